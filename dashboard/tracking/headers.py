"""Response headers of the tracking page: a strict CSP, no referrer, no caching of the page.

The token in the URL is the only key to an order, so the page must never leak it (no
Referer to tile servers or anywhere else), never be cached by a shared cache, and run only
our own scripts.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: A Host header we are willing to echo into the CSP; anything else falls back to 'self'.
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$")


def tile_origin(url_template: str) -> str:
    """The origin (scheme://host[:port]) of a tile URL template, for ``img-src``."""
    parts = urlsplit(url_template.replace("{", "").replace("}", ""))
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"tile URL template {url_template!r} must be an absolute http(s) URL")
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(host: str | None, tile_origins: tuple[str, ...] = ()) -> str:
    """Scripts and styles only from us; sockets only to us; images only ours, data: and tiles."""
    connect = ["'self'"]
    if host and _HOST.match(host):
        # 'self' covers ws(s): in CSP 3 browsers; explicit origins keep older ones working.
        connect += [f"ws://{host}", f"wss://{host}"]
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src " + " ".join(["'self'", "data:", *tile_origins]),
        "connect-src " + " ".join(connect),
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def page_headers(host: str | None, tile_origins: tuple[str, ...] = ()) -> dict[str, str]:
    """Headers for the tracking page and the not-found page alike."""
    return {
        "Content-Security-Policy": content_security_policy(host, tile_origins),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
    }
