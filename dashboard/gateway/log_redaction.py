"""Keeps tracking tokens out of access logs.

Tokens travel in the path of ``/t/{token}`` (the customer page) and of
``DELETE /api/v1/tracking-links/{token}``; anyone who can read the logs could otherwise
open those orders. The filter rewrites uvicorn's access-log records in place.
"""

from __future__ import annotations

import logging
import re

_TOKEN_PATH = re.compile(r"(/t/|/api/v1/tracking-links/)[^/?\s\"]+")
REDACTED = r"\1<redacted>"


def redact(text: str) -> str:
    return _TOKEN_PATH.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install(logger_name: str = "uvicorn.access") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
