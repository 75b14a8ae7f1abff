"""Hot reloading of the geofence index when its files change.

:class:`GeofenceRegistry` owns the current :class:`GeofenceIndex`. The worker calls
:meth:`GeofenceRegistry.reload_if_changed` on its own schedule, passing the time in; the
registry compares each watched file's (mtime, size) with what it last loaded and, when
anything differs, builds a complete new index and only then swaps it in (one reference
assignment, so readers see either the old or the new index, never a half-built one). A bad
file keeps the old index serving and is reported in the outcome and :attr:`last_error`.
Nothing here runs in the background or reads the clock.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from config.rules import RuleFileError
from geo.fence_config import load_geofence_config
from geo.fence_files import GeofenceLoadError, build_index, watched_files
from geo.fence_index import GeofenceIndex

logger = logging.getLogger(__name__)

#: (path, mtime in ns, size) per watched file; (path, None, None) for a missing one.
FileStamp = tuple[Path, int | None, int | None]


class ReloadStatus(StrEnum):
    UNCHANGED = "unchanged"
    RELOADED = "reloaded"
    FAILED = "failed"


@dataclass(frozen=True)
class ReloadOutcome:
    status: ReloadStatus
    checked_at: datetime
    fence_count: int
    error: str | None = None


def _stamps(paths: tuple[Path, ...]) -> tuple[FileStamp, ...]:
    out: list[FileStamp] = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            out.append((path, None, None))
        else:
            out.append((path, st.st_mtime_ns, st.st_size))
    return tuple(out)


class GeofenceRegistry:
    """The current geofence index plus what is needed to rebuild it when files change."""

    def __init__(self, config_path: Path, now: datetime) -> None:
        """Load the index; a bad initial file raises :class:`GeofenceLoadError` (no old index)."""
        self.config_path = config_path
        try:
            index, watched, stamps = self._build()
        except RuleFileError as exc:
            raise GeofenceLoadError(str(exc)) from None
        self._index = index
        self._watched = watched
        self._seen = stamps
        self.loaded_at: datetime = now
        self.last_error: str | None = None

    @property
    def index(self) -> GeofenceIndex:
        """The index to use now; take it once per batch and use that reference throughout."""
        return self._index

    def reload_if_changed(self, now: datetime) -> ReloadOutcome:
        """Rebuild the index if any watched file changed since the last attempt."""
        current = _stamps(self._watched)
        if current == self._seen:
            return ReloadOutcome(ReloadStatus.UNCHANGED, now, len(self._index))
        try:
            config = load_geofence_config(self.config_path)
        except RuleFileError as exc:
            # Remember what was seen so one bad save is reported once, not on every call.
            self._seen = current
            return self._failed(now, str(exc))
        # Watch the new rule file's layers from now on, even if one of them is bad, so that
        # fixing that file triggers the next reload. Stamp before reading: a write during
        # the read then shows up as a change next time.
        self._watched = watched_files(config, self.config_path)
        self._seen = _stamps(self._watched)
        try:
            index = build_index(config, self.config_path)
        except GeofenceLoadError as exc:
            return self._failed(now, str(exc))
        self._index = index  # the swap: one reference assignment
        self.loaded_at = now
        self.last_error = None
        logger.info("geofences reloaded fences=%d files=%d", len(index), len(self._watched))
        return ReloadOutcome(ReloadStatus.RELOADED, now, len(index))

    def _failed(self, now: datetime, error: str) -> ReloadOutcome:
        self.last_error = error
        logger.warning("geofence reload failed, keeping old index fences=%d error=%s", len(self._index), error)
        return ReloadOutcome(ReloadStatus.FAILED, now, len(self._index), error)

    def _build(self) -> tuple[GeofenceIndex, tuple[Path, ...], tuple[FileStamp, ...]]:
        config = load_geofence_config(self.config_path)
        watched = watched_files(config, self.config_path)
        stamps = _stamps(watched)
        return build_index(config, self.config_path), watched, stamps
