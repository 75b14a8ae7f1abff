"""A local ``influxd`` (InfluxDB 1.x) with its data under the project's data folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from orderradar.devstack.process import LocalServer, StartError, free_port

INSTALL_HINT = (
    "influxd (InfluxDB 1.x) is not installed. On Debian/Ubuntu: apt-get install influxdb "
    "(make run does this for you). Elsewhere install InfluxDB 1.8+ from your package manager, "
    "or run the production stack with: docker compose up"
)

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth_enabled}
  log-enabled = false
  pprof-enabled = false
  max-body-size = 50000000

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = false
"""


def influxd_binary() -> str:
    path = shutil.which("influxd")
    if path is None:
        raise StartError(INSTALL_HINT)
    return path


def influx_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ping", timeout=2.0).status_code == 204
    except httpx.HTTPError:
        return False


def _statement(url: str, statement: str, what: str, auth: httpx.Auth | None, timeout: float) -> None:
    response = httpx.post(f"{url}/query", params={"q": statement}, auth=auth, timeout=timeout)
    if response.status_code != 200 or '"error"' in response.text:
        raise StartError(f"cannot {what}: {response.status_code} {response.text[:200]}")


def create_database(url: str, db: str, timeout: float = 10.0, auth: httpx.Auth | None = None) -> None:
    _statement(url, f'CREATE DATABASE "{db}"', f"create InfluxDB database {db!r}", auth, timeout)


def _quoted(password: str) -> str:
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_admin(url: str, username: str, password: str, timeout: float = 10.0) -> None:
    """The first user of an ``auth-enabled`` influxd: InfluxDB 1.x allows this one statement
    without credentials while no admin exists."""
    _statement(
        url,
        f'CREATE USER "{username}" WITH PASSWORD {_quoted(password)} WITH ALL PRIVILEGES',
        f"create InfluxDB admin {username!r}",
        None,
        timeout,
    )


def create_user(
    url: str, admin: httpx.Auth, username: str, password: str, db: str, privilege: str, timeout: float = 10.0
) -> None:
    """A user with ``privilege`` (READ, WRITE or ALL) on ``db`` only."""
    _statement(
        url,
        f'CREATE USER "{username}" WITH PASSWORD {_quoted(password)}',
        f"create InfluxDB user {username!r}",
        admin,
        timeout,
    )
    _statement(
        url, f'GRANT {privilege} ON "{db}" TO "{username}"', f"grant {privilege} to {username!r}", admin, timeout
    )


class LocalInflux(LocalServer):
    """``admin``: (username, password) turns authentication on (``auth-enabled = true``) with
    that admin user, created at start; without it the local influxd takes anyone, as the
    loopback development stack does."""

    def __init__(
        self, port: int, data_dir: Path, host: str = "127.0.0.1", admin: tuple[str, str] | None = None
    ) -> None:
        self.admin = admin
        self.root = (data_dir / f"influxdb-{port}").resolve()
        self.config_path = self.root / "influxdb.conf"
        super().__init__("influxd", [influxd_binary(), "run", "-config", str(self.config_path)], port, data_dir, host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> LocalInflux:
        self._claim_port("InfluxDB")
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            _CONFIG.format(
                root=self.root,
                http_port=self.port,
                rpc_port=free_port(self.host),
                auth_enabled=str(self.admin is not None).lower(),
            )
        )
        self._run(lambda: influx_answers(self.url), timeout)
        if self.admin is not None:
            create_admin(self.url, *self.admin)
        return self

    @property
    def admin_auth(self) -> httpx.BasicAuth | None:
        return httpx.BasicAuth(*self.admin) if self.admin is not None else None
