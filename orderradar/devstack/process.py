"""A child process we own: started in its own session, stopped with its whole group.

Children get ``PR_SET_PDEATHSIG`` so that if this process dies hard (``kill -9``), the
kernel stops them too: Ctrl-C or a crash never leaves an orphan broker or influxd.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from alerting.redaction import scrub_text
from orderradar.devstack.waiting import wait_until

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class StartError(RuntimeError):
    """A service did not become ready; the message says why and where its log is."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc: the process group kill in stop() still applies
        return
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ManagedProcess:
    """One long-running child with its log file, readiness check and clean stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.proc.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError:
            raise StartError(f"{self.name}: cannot run {self.argv[0]!r}: not found") from None
        finally:
            log_file.close()
        log.info("started %s pid=%s log=%s", self.name, self.proc.pid, self.log_path)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log, redacted like this process's own logs (they are
        printed: a child that is not ours, influxd or the broker, redacts nothing)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return scrub_text("\n".join(text.splitlines()[-lines:]))

    def wait_ready(self, check: Callable[[], bool], timeout: float) -> None:
        def ready() -> bool:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                raise StartError(
                    f"{self.name} exited with code {code} before it was ready; log {self.log_path}:\n{self.log_tail()}"
                )
            return check()

        try:
            wait_until(ready, timeout, what=f"{self.name} readiness")
        except TimeoutError:
            raise StartError(
                f"{self.name} not ready within {timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}"
            ) from None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.pid, sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group, then SIGKILL what is left after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing", self.name, timeout)
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        # Reap any stragglers left in the group (e.g. a worker's own children).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode

    def kill9(self) -> None:
        """Hard crash, for fault injection."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(timeout=10)


class LocalServer:
    """A development server (the embedded broker, influxd) run as a child on ``host:port``,
    its log at ``<data_dir>/logs/<name>-<port>.log``."""

    def __init__(self, name: str, argv: Sequence[str], port: int, data_dir: Path, host: str) -> None:
        self.host = host
        self.port = port
        self.process = ManagedProcess(name, argv, data_dir / "logs" / f"{name}-{port}.log")

    def _claim_port(self, what: str) -> None:
        """Refuse a port something already listens on: its answers would be taken for ours."""
        if port_open(self.host, self.port):
            raise StartError(f"{what} port {self.port} is already in use")

    def _run(self, ready: Callable[[], bool], timeout: float) -> None:
        self.process.start()
        self.process.wait_ready(ready, timeout)

    def stop(self) -> None:
        self.process.stop()
