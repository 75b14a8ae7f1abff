"""A local ``influxd`` (InfluxDB 1.x) with its data under the project's data folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from orderradar.devstack.process import ManagedProcess, StartError, free_port, port_open

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
  auth-enabled = false
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


def create_database(url: str, db: str, timeout: float = 10.0) -> None:
    response = httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{db}"'}, timeout=timeout)
    if response.status_code != 200 or '"error"' in response.text:
        raise StartError(f"cannot create InfluxDB database {db!r}: {response.status_code} {response.text[:200]}")


class LocalInflux:
    def __init__(self, port: int, data_dir: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.root = (data_dir / f"influxdb-{port}").resolve()
        self.config_path = self.root / "influxdb.conf"
        self.process = ManagedProcess(
            "influxd", [influxd_binary(), "run", "-config", str(self.config_path)],
            data_dir / "logs" / f"influxd-{port}.log",
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> LocalInflux:
        if port_open(self.host, self.port):
            raise StartError(f"InfluxDB port {self.port} is already in use")
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            _CONFIG.format(root=self.root, http_port=self.port, rpc_port=free_port(self.host))
        )
        self.process.start()
        self.process.wait_ready(lambda: influx_answers(self.url), timeout)
        return self

    def stop(self) -> None:
        self.process.stop()
