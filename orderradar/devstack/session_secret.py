"""The session secret of a local development stack: random, one per data directory.

``orderradar up`` (``make run``) and a loopback-only ``orderradar web`` never sign with the
built-in :data:`config.settings.DEV_SESSION_SECRET` (it is public): they use the secret in
``<data_dir>/session-secret``, created on first use with mode 0600 and reused afterwards, so
sessions and one-click links survive a restart and every local process agrees on it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from config.settings import Settings

FILE_NAME = "session-secret"


class SecretFileError(RuntimeError):
    """The secret file exists but cannot be used; the message says why."""


def local_secret(data_dir: Path) -> SecretStr:
    """The secret in ``data_dir/session-secret``, created (0600) when absent."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FILE_NAME
    try:
        # O_EXCL: two processes starting at once agree on the first writer's secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48) + "\n")
    return _read(path)


def _read(path: Path) -> SecretStr:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretFileError(f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")
    value = path.read_text().strip()
    if len(value) < 32:
        raise SecretFileError(f"{path} holds fewer than 32 characters; delete it to get a new secret")
    return SecretStr(value)


def with_local_secret(settings: Settings) -> Settings:
    """``settings`` with the data directory's secret when they carry the built-in one."""
    if not settings.uses_dev_secret:
        return settings
    return settings.with_overrides(session_secret=local_secret(settings.data_dir))
