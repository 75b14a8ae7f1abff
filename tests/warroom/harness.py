"""Test harness of the war-room: the real web tier (gateway + mounted war-room under uvicorn
on a free port), the Faust worker subprocess with every stage and the alerting agent, a
producer for the worker's input topics, and headless Chromium.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import orjson
import stream_harness
from kafka import KafkaProducer
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from alerting.channels import SECRET_ENV_PREFIX
from config.gateway import GatewaySettings
from config.settings import Settings
from dashboard.gateway.staff import Role, StaffDirectory, StaffUser, hash_password
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.mount import MOUNT_PATH, warroom_mount
from gateway.harness import RunningGateway
from orderradar.devstack.process import ManagedProcess
from tracking.browser import CHROMEDRIVER, chrome_options

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"manager": "pw-manager-0001", "viewer": "pw-viewer-0001"}
ROLES = {"manager": Role.MANAGER, "viewer": Role.VIEWER}
TIMEZONE = "Asia/Shanghai"

# Scripts that read the page's figures.
#: The number of hexagon paths drawn by the map's choropleth trace ``arguments[0]``.
HEX_PATHS = (
    "var layers = document.querySelectorAll('#map-graph .choroplethlayer .trace');"
    "return layers.length > arguments[0] ? layers[arguments[0]].querySelectorAll('path').length : 0;"
)
#: The number of traces of the figure inside element ``arguments[0]``.
TRACES = (
    "var g = document.getElementById(arguments[0]).querySelector('.js-plotly-plot');"
    " return g && g._fullData ? g._fullData.length : 0;"
)
#: Map trace ``arguments[0]`` is drawn (re-rendered by live updates: missing for a moment is "not yet").
VISIBLE = (
    "var g = document.getElementById('map-graph').querySelector('.js-plotly-plot');"
    "var t = g && g._fullData ? g._fullData[arguments[0]] : null; return !!t && t.visible === true;"
)


def build_staff() -> StaffDirectory:
    return StaffDirectory(
        {
            name: StaffUser(role=ROLES[name], password=hash_password(pw), name=name.title())
            for name, pw in PASSWORDS.items()
        }
    )


class WebTier(RunningGateway):
    """The gateway with the war-room mounted, served by uvicorn in a background thread."""

    def __init__(self, settings: Settings, staff: StaffDirectory, deps: WarroomDeps) -> None:
        options = GatewaySettings.from_settings(settings, ws_first_message_timeout_s=10.0)
        super().__init__(settings, options, staff, mounts={MOUNT_PATH: warroom_mount(settings, deps)})

    @property
    def warroom_url(self) -> str:
        return f"{self.base_url}{MOUNT_PATH}/"


def start_worker(
    settings: Settings,
    log_path: Path,
    alert_secrets: Mapping[str, str],
    worker_log_level: str = "warning",
    log_level: str = "WARNING",
) -> ManagedProcess:
    """``orderradar worker`` (every stage and the alerting agent, ticking each second) with
    the test's settings and the receivers' secrets (``ORDERRADAR_ALERT_SECRET_<NAME>``)."""
    secrets = {f"{SECRET_ENV_PREFIX}{name.upper()}": value for name, value in alert_secrets.items()}
    return stream_harness.start_worker(
        settings,
        log_path,
        "--alert-tick",
        "1",
        worker_log_level=worker_log_level,
        log_level=log_level,
        core_only=False,
        env=secrets,
    )


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
        # A manager in China: the page's language follows Accept-Language (--lang alone does not
        # set it in headless Chromium).
        options = chrome_options(self.profile.name, (width, height), "zh-CN", "zh-CN,zh")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver: WebDriver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
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

    def alert_buttons(self, alert_id: str, action: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, f"[id*='{alert_id}'] .btn-{action}")

    def click_found(self, find: Callable[[], list[WebElement]], what: str) -> None:
        """Click the first element ``find`` returns; live updates re-render the page, so an
        element found a moment ago may be gone: find it again until the click lands."""

        def attempt(_driver: object) -> bool:
            try:
                found = find()
                if found:
                    found[0].click()
                    return True
            except StaleElementReferenceException:
                pass
            return False

        self.wait(attempt, 10, f"{what} clicked")

    def click_alert(self, alert_id: str, action: str) -> None:
        self.click_found(lambda: self.alert_buttons(alert_id, action), f"the {action} button")

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
