"""Times shown in the viewer's time zone (the browser reports it; the server renders). Pure.

Everything the war-room receives is in UTC or carries an offset; a manager in Shanghai wants
08:00 to read 16:00. Unknown zone names fall back to UTC rather than failing a render.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

UTC = "UTC"


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or UTC)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(UTC)


def local_text(iso: str | None, tz: str | None, seconds: bool = False) -> str:
    """``YYYY-MM-DD HH:MM`` (``:SS`` with ``seconds``) of an ISO time in zone ``tz``; the
    input unchanged when it is not a time."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(UTC))
    return moment.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def localised(frame: pd.DataFrame, tz: str | None, column: str = "time") -> pd.DataFrame:
    """``frame`` with its aware ``column`` converted to ``tz`` (a copy; empty frames as given)."""
    if frame.empty or column not in frame:
        return frame
    out = frame.copy()
    out[column] = pd.to_datetime(out[column], utc=True).dt.tz_convert(zone(tz).key)
    return out
