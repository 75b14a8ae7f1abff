"""Test harness of the war-room: the real web tier (gateway + mounted war-room under uvicorn
on a free port), the Faust worker subprocess with every stage and the alerting agent, a
producer for the worker's input topics, and headless Chromium.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import orjson
import uvicorn
from kafka import KafkaProducer
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from alerting.channels import SECRET_ENV_PREFIX
from config.gateway import GatewaySettings
from config.settings import Settings, to_env
from dashboard.gateway.app import create_app
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.server import uvicorn_config
from dashboard.gateway.staff import Role, StaffDirectory, StaffUser, hash_password
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.mount import MOUNT_PATH, warroom_mount
from orderradar.devstack.process import ManagedProcess, free_port
from orderradar.devstack.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"manager": "pw-manager-0001", "viewer": "pw-viewer-0001"}
ROLES = {"manager": Role.MANAGER, "viewer": Role.VIEWER}
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TIMEZONE = "Asia/Shanghai"


def build_staff() -> StaffDirectory:
    return StaffDirectory(
        {
            name: StaffUser(role=ROLES[name], password=hash_password(pw), name=name.title())
            for name, pw in PASSWORDS.items()
        }
    )


class WebTier:
    """The gateway with the war-room mounted, served by uvicorn in a background thread."""

    def __init__(self, settings: Settings, staff: StaffDirectory, deps: WarroomDeps) -> None:
        self.port = free_port()
        self.settings = settings.with_overrides(web_host="127.0.0.1", web_port=self.port)
        options = GatewaySettings.from_settings(self.settings, ws_first_message_timeout_s=10.0)
        self.gateway = Gateway(self.settings, options, staff=staff)
        self.app = create_app(
            self.settings, gateway=self.gateway, mounts={MOUNT_PATH: warroom_mount(self.settings, deps)}
        )
        config = uvicorn_config(self.app, self.settings, options, access_log=False, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"web-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def warroom_url(self) -> str:
        return f"{self.base_url}{MOUNT_PATH}/"

    def start(self, timeout: float = 30.0) -> WebTier:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout, what="uvicorn start")
        gateway = self.gateway
        wait_until(
            lambda: gateway.publisher.connected and gateway.updates.assigned,
            timeout,
            what="gateway producer and readers",
        )
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "web server thread did not stop"


def start_worker(
    settings: Settings, log_path: Path, alert_secrets: Mapping[str, str], worker_log_level: str = "warning"
) -> ManagedProcess:
    """``orderradar worker`` (every stage and the alerting agent, ticking each second) with
    the test's settings and the receivers' secrets (``ORDERRADAR_ALERT_SECRET_<NAME>``)."""
    env = {**os.environ, **to_env(settings), "PYTHONUNBUFFERED": "1"}
    env.update({f"{SECRET_ENV_PREFIX}{name.upper()}": value for name, value in alert_secrets.items()})
    argv = [
        sys.executable,
        "-m",
        "orderradar.cli",
        "--log-level",
        "WARNING",
        "worker",
        "--session-timeout",
        "6",
        "--alert-tick",
        "1",
        "--worker-log-level",
        worker_log_level,
    ]
    return ManagedProcess("worker", argv, log_path, env=env, cwd=REPO).start()


class Feeder:
    """Produces JSON records to the test's topics (logical names, prefix applied)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)

    def send(self, topic: str, key: str, value: Mapping[str, Any] | bytes, timestamp_ms: int | None = None) -> None:
        data = value if isinstance(value, bytes) else orjson.dumps(value)
        self.producer.send(self.settings.topic(topic), key=key.encode(), value=data, timestamp_ms=timestamp_ms)

    def flush(self) -> None:
        self.producer.flush(timeout=30)

    def close(self) -> None:
        self.producer.close(timeout=10)


def int_attribute(element: WebElement, name: str) -> int:
    """An element's integer attribute (``aria-valuenow``, ``data-count``); a missing one fails."""
    value = element.get_attribute(name)
    assert value is not None, f"no {name} on the {element.tag_name}"
    return int(value)


class Browser:
    """Headless Chromium from Debian (never a downloaded browser) with explicit waits."""

    def __init__(self, width: int = 1680, height: int = 1400) -> None:
        self.profile = tempfile.TemporaryDirectory(prefix="warroom-chromium-")
        options = webdriver.ChromeOptions()
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={self.profile.name}",
            f"--window-size={width},{height}",
            "--lang=zh-CN",
        ):
            options.add_argument(arg)
        options.binary_location = CHROMIUM
        # A manager whose browser asks for Chinese (the page follows Accept-Language).
        options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN"})
        # A manager in China: the page's language follows Accept-Language (--lang alone does not
        # set it in headless Chromium).
        options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver: WebDriver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        # A manager in Shanghai: the page must show local times, whatever the machine's zone.
        self.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": TIMEZONE})

    def close(self) -> None:
        self.driver.quit()
        self.profile.cleanup()

    def wait(self, condition: Callable[[WebDriver], Any], timeout: float, what: str) -> Any:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition, message=what)

    def text(self, element_id: str) -> str:
        elements = self.driver.find_elements(By.ID, element_id)
        return elements[0].text if elements else ""

    def script(self, source: str, *args: Any) -> Any:
        return self.driver.execute_script(source, *args)

    def login(self, url: str, user: str) -> None:
        self.driver.get(url)
        self.wait(lambda d: d.find_elements(By.ID, "username"), 20, "the sign-in page")
        self.driver.find_element(By.ID, "username").send_keys(user)
        self.driver.find_element(By.ID, "password").send_keys(PASSWORDS[user])
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait(lambda d: d.find_elements(By.ID, "map-graph"), 30, "the war-room after signing in")

    def errors(self) -> list[str]:
        """Severe browser console messages (JavaScript errors, failed loads)."""
        entries = cast(Any, self.driver).get_log("browser")  # Chrome's console, not in the remote API
        return [e["message"] for e in entries if e.get("level") == "SEVERE"]

    def screenshot(self, path: Path) -> Path:
        """The whole page, not only the window (the history charts sit below the fold)."""
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
