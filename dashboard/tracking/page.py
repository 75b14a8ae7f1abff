"""The customer tracking page ``/t/{token}`` and its not-found twin.

The page is static HTML plus a small script; everything about the order arrives over
``/ws/track``, where the script sends the token in its first message. The server only
checks the token exists, so serving the page costs one lookup and a template render.
Unknown, expired, revoked and other tenants' tokens all get the same 404 response, byte
for byte (the not-found page is bilingual so it does not even vary with the language).
While a just-started gateway is still replaying ``tracking-tokens``, an unknown token gets a
503 "one moment" page that reloads itself instead of a wrong 404.

Routes (:func:`tracking_routes`): ``GET /t/{token}`` and ``GET /t/assets/{digest}/{name}``
(the script, the stylesheet and each province's prefecture outlines, content-addressed and
cached for a year); any
other path under ``/t/`` is the same not-found page; ``/favicon.ico`` is the site icon.

The language is ``?lang=`` (remembered for a year in the ``orderradar_lang`` cookie), else
the remembered choice, else ``Accept-Language`` (:func:`negotiate_language`).
Optional raster tiles: pass ``tiles=TileLayer("https://tiles.example/{z}/{x}/{y}.png",
"© attribution")`` (:func:`tile_layer` reads ``ORDERRADAR_MAP_TILE_URL``, ``_ATTRIBUTION`` and
``_CRS``: ``gcj02`` for Chinese providers, whose tiles are offset); the tile origin is added
to the page's ``img-src``.
"""

from __future__ import annotations

import gzip
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from config.settings import Settings
from dashboard.tracking.areas import area_index
from dashboard.tracking.assets import ASSET_PREFIX, AssetBundle
from dashboard.tracking.headers import page_headers, tile_origin
from dashboard.tracking.language import Lang, chosen_language, negotiate_language
from dashboard.tracking.messages import NOT_FOUND, WARMING_UP, catalogue
from dashboard.tracking.milestones import LADDER, milestone_table

#: Answers "does this token open an order right now?" (sync or async).
TokenCheck = Callable[[str], bool | Awaitable[bool]]


#: Seconds after which a browser retries while the server is still reading the links.
WARM_UP_RETRY_S = 2
#: A position younger than this (event time vs the browser's clock) is called "live";
#: older ones show their age, recomputed every ``AGE_REFRESH_S`` while the page is open.
LIVE_WITHIN_S = 120
AGE_REFRESH_S = 30


def _tokens_loading(request: Request) -> bool:
    """Whether the gateway on ``app.state`` is still replaying ``tracking-tokens`` (so
    "unknown" may be wrong); ``False`` when there is no gateway to ask."""
    gateway = getattr(request.app.state, "gateway", None)
    grants = getattr(gateway, "grants", None)
    return grants is not None and not getattr(grants, "caught_up", True)


def gateway_token_check(request: Request, token: str) -> bool:
    """The default check: the gateway instance the app factory put on ``app.state``."""
    gateway = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise RuntimeError(
            "the tracking page needs the gateway on app.state.gateway "
            "(dashboard.gateway.app.create_app) or an explicit token_exists"
        )
    return bool(gateway.tracking_token_valid(token))


#: Token syntax accepted before any lookup: URL-safe base64-ish, bounded length.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
TEMPLATES = Path(__file__).resolve().parent / "templates"
FAVICON = Path(__file__).resolve().parent / "static" / "favicon.ico"

#: The cookie remembering a customer's ``?lang=`` choice (path ``/t``; no other use).
LANG_COOKIE = "orderradar_lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600


@dataclass(frozen=True)
class TileLayer:
    """Optional raster tiles under the boundaries, e.g. ``https://tiles.example/{z}/{x}/{y}.png``."""

    url_template: str
    attribution: str
    max_zoom: int = 18
    #: The tiles' datum: ``wgs84`` or ``gcj02`` (AMap, Tencent: the page shifts points onto them).
    crs: str = "wgs84"

    @property
    def origin(self) -> str:
        return tile_origin(self.url_template)


def tile_layer(settings: Settings) -> TileLayer | None:
    """The configured tiles (``ORDERRADAR_MAP_TILE_URL`` and friends), or ``None``: offline map."""
    if not settings.map_tile_url:
        return None
    return TileLayer(settings.map_tile_url, settings.map_tile_attribution, crs=settings.map_tile_crs)


def _json_for_html(value: object) -> Markup:
    """JSON safe inside a <script type="application/json"> element."""
    text = orjson.dumps(value).decode()
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


class TrackingPage:
    """Renders the page; holds the template environment, the assets and the token check."""

    def __init__(
        self,
        token_exists: TokenCheck | None = None,
        *,
        ws_path: str = "/ws/track",
        tiles: TileLayer | None = None,
        assets: AssetBundle | None = None,
    ) -> None:
        self._token_exists = token_exists
        self._ws_path = ws_path
        self._tiles = tiles
        self.assets = assets or AssetBundle.from_dir()
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._page = env.get_template("page.html")
        # Rendered once: they must never vary with the request.
        notice = env.get_template("notice.html")
        self.not_found_body = notice.render(t=NOT_FOUND, css=self.assets["tracking.css"].url).encode()
        self.warming_up_body = notice.render(t=WARMING_UP, css=self.assets["tracking.css"].url).encode()
        # The page depends on nothing but the language: render and compress each once.
        self._bodies = {lang: self.render(lang).encode() for lang in Lang}
        self._gzipped = {lang: gzip.compress(body, compresslevel=9, mtime=0) for lang, body in self._bodies.items()}

    def _tile_origins(self) -> tuple[str, ...]:
        return (self._tiles.origin,) if self._tiles else ()

    def not_found(self, request: Request) -> Response:
        return Response(
            self.not_found_body,
            status_code=404,
            media_type="text/html; charset=utf-8",
            headers=page_headers(request.headers.get("host"), self._tile_origins()),
        )

    def warming_up(self, request: Request) -> Response:
        headers = page_headers(request.headers.get("host"), self._tile_origins())
        headers.update({"Retry-After": str(WARM_UP_RETRY_S), "Refresh": str(WARM_UP_RETRY_S)})
        return Response(self.warming_up_body, status_code=503, media_type="text/html; charset=utf-8", headers=headers)

    async def _valid(self, request: Request, token: str) -> bool:
        if not _TOKEN.match(token):
            return False
        if self._token_exists is None:
            return gateway_token_check(request, token)
        answer = self._token_exists(token)
        if inspect.isawaitable(answer):
            answer = await answer
        return bool(answer)

    def render(self, lang: Lang) -> str:
        words = catalogue(lang)
        config = {
            "lang": lang.value,
            "ws_path": self._ws_path,
            "areas": {
                code: {"url": self.assets[f"areas-{code}.json"].url, "box": box}
                for code, box in area_index().province_boxes.items()
            },
            "words": dict(words),
            "milestones": milestone_table(),
            "live_within_s": LIVE_WITHIN_S,
            "age_refresh_s": AGE_REFRESH_S,
            "tiles": None
            if self._tiles is None
            else {
                "url": self._tiles.url_template,
                "attribution": self._tiles.attribution,
                "max_zoom": self._tiles.max_zoom,
                "crs": self._tiles.crs,
            },
        }
        return self._page.render(
            lang=lang.value,
            t=words,
            ladder=[m.value for m in LADDER],
            langs=list(Lang),
            css=self.assets["tracking.css"].url,
            js=self.assets["tracking.js"].url,
            config=_json_for_html(config),
        )

    async def endpoint(self, request: Request) -> Response:
        """``GET /t/{token}``."""
        token = request.path_params["token"]
        if not await self._valid(request, token):
            if _tokens_loading(request):
                return self.warming_up(request)
            return self.not_found(request)
        choice = chosen_language(request.query_params.get("lang"))
        remembered = request.cookies.get(LANG_COOKIE)
        lang = negotiate_language(request.headers.get("accept-language"), choice, remembered)
        headers = page_headers(request.headers.get("host"), self._tile_origins())
        headers["Content-Language"] = lang.value
        headers["Vary"] = "Accept-Language, Accept-Encoding, Cookie"
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            response = HTMLResponse(self._gzipped[lang], headers=headers)
        else:
            response = HTMLResponse(self._bodies[lang], headers=headers)
        if choice is not None and choice.value != remembered:
            response.set_cookie(
                LANG_COOKIE,
                choice.value,
                max_age=LANG_COOKIE_MAX_AGE_S,
                path="/t",
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="lax",
            )
        return response

    async def not_found_endpoint(self, request: Request) -> Response:
        """Any other path under ``/t/`` (``/t/{token}/extra``, ``/t/``): the not-found page."""
        return self.not_found(request)


_FAVICON_BODY = FAVICON.read_bytes()


async def favicon(_request: Request) -> Response:
    """``GET /favicon.ico``: browsers ask for it on every page."""
    return Response(_FAVICON_BODY, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


def tracking_routes(
    token_exists: TokenCheck | None = None, *, ws_path: str = "/ws/track", tiles: TileLayer | None = None
) -> list[BaseRoute]:
    """The routes to mount at the web server's root: the page and its assets.

    ``token_exists`` defaults to ``request.app.state.gateway.tracking_token_valid``.
    """
    page = TrackingPage(token_exists, ws_path=ws_path, tiles=tiles)
    return [
        Route(ASSET_PREFIX + "/{digest}/{name}", page.assets.endpoint, methods=["GET"], name="tracking_asset"),
        Route("/t/{token}", page.endpoint, methods=["GET"], name="tracking_page"),
        Route("/t/{rest:path}", page.not_found_endpoint, methods=["GET"], name="tracking_not_found"),
        Route("/t", page.not_found_endpoint, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"], name="favicon"),
    ]
