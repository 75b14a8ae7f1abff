"""The page's static files, held in memory with content-hashed URLs and gzip bodies.

Thousands of phones load the same few files: each is read once at startup, compressed
once, and served with ``Cache-Control: immutable`` under a URL that changes whenever the
content does (``/t/assets/{digest}/{name}``), so a browser asks for it only once.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The URL prefix of the assets; three path segments so ``/t/{token}`` never matches them.
ASSET_PREFIX = "/t/assets"
IMMUTABLE = "public, max-age=31536000, immutable"

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    name: str
    digest: str
    media_type: str
    body: bytes
    gzip_body: bytes

    @property
    def url(self) -> str:
        return f"{ASSET_PREFIX}/{self.digest}/{self.name}"


def load_asset(path: Path, name: str | None = None) -> Asset:
    body = path.read_bytes()
    media_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # mtime=0: the same content always compresses to the same bytes.
    return Asset(
        name or path.name,
        hashlib.sha256(body).hexdigest()[:16],
        media_type,
        body,
        gzip.compress(body, compresslevel=9, mtime=0),
    )


class AssetBundle:
    """The tracking page's files, by name."""

    def __init__(self, assets: Iterable[Asset]) -> None:
        self._by_name: Mapping[str, Asset] = {a.name: a for a in assets}

    @classmethod
    def from_dir(
        cls, directory: Path = STATIC_DIR, names: Iterable[str] = ("tracking.js", "tracking.css")
    ) -> AssetBundle:
        """The named files, plus each province's prefecture outlines (``areas/<adcode>.json``,
        served as ``areas-<adcode>.json``: asset names have no slash)."""
        areas = sorted((directory / "areas").glob("*.json"))
        return cls(
            [
                *(load_asset(directory / name) for name in names),
                *(load_asset(path, f"areas-{path.name}") for path in areas),
            ]
        )

    def __getitem__(self, name: str) -> Asset:
        return self._by_name[name]

    def urls(self) -> dict[str, str]:
        return {name: asset.url for name, asset in self._by_name.items()}

    async def endpoint(self, request: Request) -> Response:
        """``GET /t/assets/{digest}/{name}``; a stale digest is a 404, never old content."""
        asset = self._by_name.get(request.path_params["name"])
        if asset is None or asset.digest != request.path_params["digest"]:
            return Response(
                b"not found\n", status_code=404, media_type="text/plain", headers={"Cache-Control": "no-store"}
            )
        headers = {
            "Cache-Control": IMMUTABLE,
            "ETag": f'"{asset.digest}"',
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == f'"{asset.digest}"':
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(asset.gzip_body, media_type=asset.media_type, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)
