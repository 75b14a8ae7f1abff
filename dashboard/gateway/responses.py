"""JSON responses and request bodies of the API, in one shape.

Errors are ``{"error": <code>, "detail": <text>}`` (plus ``problems`` for validation),
and every API response carries ``Cache-Control: no-store`` and ``nosniff``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

M = TypeVar("M", bound=BaseModel)

_API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status,
        media_type="application/json",
        headers={**_API_HEADERS, **(headers or {})},
    )


def raw_json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=_API_HEADERS)


def error_response(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    return json_response({"error": error, "detail": detail, **extra}, status, headers)


def problems_of(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        problem = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        out.append({"field": field, "problem": problem})
    return out


class BodyError(Exception):
    """A request body that cannot be used; carries the response to send."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower() == "application/json"


async def read_model(request: Request, model: type[M]) -> M:
    """The JSON body as ``model``; raises :class:`BodyError` (415 or 422) otherwise.

    Requiring ``application/json`` also stops cross-site form posts (a browser cannot
    send that content type cross-origin without a CORS preflight we never grant).
    """
    if not is_json(request):
        raise BodyError(error_response(415, "unsupported_media_type", "send Content-Type: application/json"))
    body = await request.body()
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise BodyError(
            error_response(422, "invalid_body", "the request body is not valid", problems=problems_of(exc))
        ) from None


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors (404 route, 405, 413 body limit) in the API's JSON shape."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, _code(exc.status_code), str(exc.detail), exc.headers)


def _code(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed", 413: "content_too_large"}.get(status, f"http_{status}")
