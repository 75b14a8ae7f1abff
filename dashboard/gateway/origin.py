"""The ``Origin`` allow-list for WebSocket handshakes (Cross-Site WebSocket Hijacking). Pure.

Browsers always send ``Origin`` on a WebSocket handshake, and Starlette's CORS middleware
does not look at WebSockets, so the endpoints check it themselves before ``accept``.
Allowed: the configured origins, the origin of ``public_url``, and the server's own host
(``Origin`` host equal to the ``Host`` header). A handshake without ``Origin`` is not from
a browser (CSWSH needs one) and is allowed; ``Origin: null`` (sandboxed frames, files) is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalise(origin: str) -> str | None:
    """``scheme://host:port`` in lower case with the port made explicit; ``None`` if unusable."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return f"{scheme}://{parts.hostname.lower()}:{port or _DEFAULT_PORTS[scheme]}"


def _host_port(host_header: str, scheme: str) -> str | None:
    try:
        parts = urlsplit(f"//{host_header.strip()}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return f"{parts.hostname.lower()}:{port or _DEFAULT_PORTS.get(scheme, 80)}"


def origin_allowed(origin: str | None, host_header: str | None, allowed: Iterable[str]) -> bool:
    if origin is None:
        return True
    wanted = normalise(origin)
    if wanted is None:
        return False
    if wanted in {n for n in (normalise(a) for a in allowed) if n is not None}:
        return True
    if host_header:
        scheme, _, rest = wanted.partition("://")
        return rest == _host_port(host_header, scheme)
    return False
