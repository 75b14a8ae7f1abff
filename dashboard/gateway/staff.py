"""Staff accounts: the YAML user file, password hashes (scrypt via hashlib) and roles.

The user file (``config/staff.yaml``; format in ``config/staff.example.yaml``)::

    users:
      alice:
        role: manager            # manager | on-call | viewer
        password: "scrypt$16384$8$1$<salt b64>$<hash b64>"
        name: Alice Wang         # optional display name
        session_epoch: 0         # optional; raise it to sign the user out everywhere

Create a hash with ``python -m dashboard.gateway.staff`` (prompts for the password).
Verification is constant-time, and an unknown user costs the same scrypt work as a
known one, so response time does not reveal which user names exist.

A directory loaded from a file notices edits (checked at most once a second): every web
instance reads the same file, so a changed password, role or ``session_epoch`` changes the
user's fingerprint (:attr:`StaffMember.fingerprint`) on all of them, which ends that user's sessions.
An edit that leaves the file invalid is logged and locks everyone out until it is fixed
(failing closed, as the first load does).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import logging
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

from config import PACKAGE_CONFIG_DIR
from config.rules import RuleFileError, load_yaml_model
from stream.contract import plain_text

log = logging.getLogger(__name__)

#: The shipped example file; its users share the published password "orderradar-demo".
DEMO_STAFF_FILE = PACKAGE_CONFIG_DIR / "staff.example.yaml"

#: scrypt cost: n=2**14, r=8, p=1 is ~16 MiB and tens of ms per check (OWASP minimum-ish).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_MAXMEM = 64 * 1024 * 1024


class Role(StrEnum):
    MANAGER = "manager"
    ON_CALL = "on-call"
    VIEWER = "viewer"


class Permission(StrEnum):
    VIEW = "view"  # read APIs and the war-room stream
    ACT_ON_ALERTS = "act_on_alerts"  # ack, resolve, silence
    MANAGE_DISRUPTIONS = "manage_disruptions"
    ISSUE_TRACKING_LINKS = "issue_tracking_links"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.MANAGER: frozenset(Permission),
    Role.ON_CALL: frozenset(
        {Permission.VIEW, Permission.ACT_ON_ALERTS, Permission.MANAGE_DISRUPTIONS, Permission.ISSUE_TRACKING_LINKS}
    ),
    Role.VIEWER: frozenset({Permission.VIEW}),
}


class PasswordHashError(ValueError):
    """A stored password hash is not in the ``scrypt$n$r$p$salt$hash`` format."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A storable hash: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


@dataclass(frozen=True)
class PasswordHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise PasswordHashError("expected scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>")
        try:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
        except ValueError as exc:
            raise PasswordHashError(f"bad number or base64 in hash: {exc}") from None
        if n < 2**12 or n & (n - 1) or not (1 <= r <= 32) or not (1 <= p <= 16) or len(salt) < 8 or len(digest) < 16:
            raise PasswordHashError(
                "scrypt parameters too weak or malformed (n a power of two >= 4096, salt >= 8 bytes)"
            )
        return cls(n, r, p, salt, digest)

    def matches(self, password: str) -> bool:
        computed = hashlib.scrypt(
            password.encode(), salt=self.salt, n=self.n, r=self.r, p=self.p, maxmem=_MAXMEM, dklen=len(self.digest)
        )
        return hmac.compare_digest(computed, self.digest)


def _plain_if_text(value: object) -> object:
    return plain_text(value) if isinstance(value, str) else value


#: A login name. Control and invisible characters are named first (``plain_text``), so the
#: error says which character is wrong instead of echoing it inside a pattern mismatch.
UserName = Annotated[str, BeforeValidator(_plain_if_text), StringConstraints(pattern=r"^[A-Za-z0-9._@-]{1,64}$")]


class StaffUser(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    password: str
    #: Display name, shown to other staff: plain text only.
    name: Annotated[str, AfterValidator(plain_text)] = ""
    #: Raising it ends every session the user has (nothing else changes).
    session_epoch: int = Field(default=0, ge=0)

    @field_validator("password")
    @classmethod
    def _valid_hash(cls, value: str) -> str:
        try:
            PasswordHash.parse(value)
        except PasswordHashError as exc:
            raise ValueError(str(exc)) from None
        return value


class StaffFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: dict[UserName, StaffUser] = Field(default_factory=dict)


@dataclass(frozen=True)
class StaffMember:
    """An authenticated staff member, as the request handlers see them."""

    username: str
    role: Role
    #: Digest of the password, role and session epoch when read; sessions carry it.
    fingerprint: str = field(default="", compare=False)

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


# Used to spend the same scrypt work when the user name is unknown.
_DUMMY_HASH = PasswordHash(SCRYPT_N, SCRYPT_R, SCRYPT_P, b"\x00" * 16, b"\x00" * 32)


def _fingerprint(username: str, user: StaffUser) -> str:
    """A digest that changes whenever the user's password, role or session epoch does."""
    text = f"{username}\n{user.role.value}\n{user.password}\n{user.session_epoch}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Loaded:
    users: dict[str, StaffUser]
    hashes: dict[str, PasswordHash]
    fingerprints: dict[str, str]

    @classmethod
    def of(cls, users: dict[str, StaffUser]) -> _Loaded:
        return cls(
            dict(users),
            {name: PasswordHash.parse(u.password) for name, u in users.items()},
            {name: _fingerprint(name, u) for name, u in users.items()},
        )


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class StaffDirectory:
    """The loaded user file. ``authenticate`` is CPU-heavy: run it in a thread."""

    #: Seconds between checks of the file for edits.
    CHECK_EVERY_S = 1.0

    def __init__(
        self,
        users: dict[str, StaffUser],
        *,
        source: Path | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # One immutable snapshot, swapped whole: authenticate() runs in worker threads.
        self._loaded = _Loaded.of(users)
        self._source = source
        self._monotonic = monotonic
        self._stamp = _file_stamp(source) if source is not None else None
        self._checked_at = monotonic()

    @classmethod
    def load(cls, path: Path) -> StaffDirectory:
        """Load and validate ``path``; a bad file raises ``RuleFileError`` naming field and problem."""
        return cls(dict(load_yaml_model(path, StaffFile).users), source=path)

    @classmethod
    def empty(cls) -> StaffDirectory:
        return cls({})

    def __len__(self) -> int:
        return len(self._current().users)

    def _current(self) -> _Loaded:
        source = self._source
        if source is not None and self._monotonic() - self._checked_at >= self.CHECK_EVERY_S:
            self._checked_at = self._monotonic()
            stamp = _file_stamp(source)
            if stamp != self._stamp:
                self._stamp = stamp
                self._loaded = self._reload(source)
        return self._loaded

    @staticmethod
    def _reload(source: Path) -> _Loaded:
        try:
            users = dict(load_yaml_model(source, StaffFile).users)
        except RuleFileError as exc:
            log.error("staff file changed and is now unusable, nobody can sign in until it is fixed: %s", exc)
            return _Loaded.of({})
        log.info("staff file %s reloaded: %d users", source, len(users))
        return _Loaded.of(users)

    def member(self, username: str) -> StaffMember | None:
        """The current role of ``username`` (``None`` once removed from the file)."""
        loaded = self._current()
        user = loaded.users.get(username)
        return StaffMember(username, user.role, loaded.fingerprints[username]) if user is not None else None

    def authenticate(self, username: str, password: str) -> StaffMember | None:
        loaded = self._current()
        stored = loaded.hashes.get(username)
        matched = (stored or _DUMMY_HASH).matches(password)
        if stored is None or not matched:
            return None
        return StaffMember(username, loaded.users[username].role, loaded.fingerprints[username])

    def demo_users(self) -> list[str]:
        """Users whose password hash is one of the shipped example file's (password public)."""
        demo = _demo_hashes()
        return sorted(name for name, user in self._current().users.items() if user.password in demo)


@cache
def _demo_hashes() -> frozenset[str]:
    return frozenset(user.password for user in load_yaml_model(DEMO_STAFF_FILE, StaffFile).users.values())


def main() -> int:
    """Print a password hash for the staff file (reads the password without echo)."""
    password = getpass.getpass("password: ")
    if len(password) < 12:
        print("use at least 12 characters", file=sys.stderr)
        return 2
    if getpass.getpass("again: ") != password:
        print("passwords differ", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
