"""No secret in the worker's log: the alerting agent pages webhooks whose URLs carry a token,
the receiver answers 404 and echoes the URL back, and the worker (every logger at DEBUG,
Faust's own handlers included) must not write the token anywhere."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from alerting_receivers import http_receiver
from test_escalation_kill9 import RECEIVERS, REPO, hub_incident, policy_text, produce_one

from config.settings import Settings
from orderradar.devstack.waiting import wait_until
from stream.topics import ALERT_INPUTS
from warroom import harness

pytestmark = pytest.mark.integration


def test_webhook_tokens_never_reach_the_worker_log(stack_settings: Settings, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(REPO / "config", config_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (config_dir / "alerting.yaml").write_text(policy_text(), encoding="utf-8")
    settings = stack_settings.model_copy(update={"config_dir": config_dir})
    hook_token = secrets.token_urlsafe(24)

    with http_receiver(b"{}") as (base, script):
        script.steps = ["permanent"] * 20  # 404 "no such hook <the path>": final, and echoes the token
        hooks = {name: f"{base}/hooks/{hook_token}/{name}" for name in RECEIVERS}
        worker = harness.start_worker(settings, tmp_path / "worker.log", hooks, "debug", log_level="DEBUG")
        try:
            now = datetime.now(UTC)
            asyncio.run(
                produce_one(settings, settings.topic(ALERT_INPUTS), b"inc-hub-sha-01", orjson.dumps(hub_incident(now)))
            )

            def abandoned() -> bool:
                if not worker.alive():
                    raise AssertionError(f"worker exited:\n{worker.log_tail(40)}")
                return "delivery abandoned" in worker.log_path.read_text()

            wait_until(abandoned, timeout=120, interval=0.2, what="a page refused and abandoned")
        finally:
            worker.stop()

    assert any(hook_token in r["path"] for r in script.requests)  # the token did travel
    log = worker.log_path.read_text()
    assert hook_token not in log, f"webhook token in {worker.log_path}"
    assert "error=HTTP 404: no such hook <redacted>" in log  # the echo was logged, redacted
