"""Headless Chromium for the browser tests: Debian's chromium and chromedriver, never a download.

Also axe-core (npm, installed by ``make test-setup``) for accessibility checks, a zoom
emulation and the bytes a page load moved over the network.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
#: axe-core impacts a page must not have.
SERIOUS = ("serious", "critical")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE = (390, 844)
DESKTOP = (1366, 900)

T = TypeVar("T")


def chrome_options(
    profile: str, size: tuple[int, int], lang: str, accept_languages: str | None = None, *extra: str
) -> webdriver.ChromeOptions:
    """Debian's Chromium, headless, with a throw-away profile, a window size and a language."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--lang={lang}",
        f"--window-size={size[0]},{size[1]}",
        *extra,
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": accept_languages or lang})
    return options


@contextmanager
def chromium(
    size: tuple[int, int] = DESKTOP, lang: str = "en-US", timezone: str = "Asia/Shanghai"
) -> Iterator[WebDriver]:
    """One headless browser with a throw-away profile, sized like a phone or a desktop."""
    profile = tempfile.mkdtemp(prefix="orderradar-chromium-")
    options = chrome_options(profile, size, lang, None, "--hide-scrollbars")
    # The customer's phone clock: times on the page are shown in the browser's zone.
    service = Service(str(CHROMEDRIVER), env={**os.environ, "TZ": timezone})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_window_size(*size)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600},
        )
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], timeout_s: float = 15.0, message: str = "") -> T:
    """Poll ``condition`` until it is truthy (selenium's explicit wait), or fail with ``message``."""
    return WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(condition, message)


def full_page_screenshot(driver: WebDriver, path: Path, size: tuple[int, int]) -> Path:
    """The whole page at the given viewport width (tall pages are captured whole)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": max(size[1], height), "deviceScaleFactor": 1, "mobile": size[0] < 600},
    )
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600},
        )
    return path


def axe_violations(driver: WebDriver, impacts: tuple[str, ...] = SERIOUS) -> list[dict[str, Any]]:
    """axe-core's WCAG violations on the page as it is now, of the given impacts."""
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run `make test-setup` (npm ci installs axe-core)")
    driver.set_script_timeout(120)
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        "  .then(function (r) { done(r.violations); }, function (e) { done({error: String(e)}); });"
    )
    if isinstance(result, dict):
        raise RuntimeError(f"axe-core failed: {result.get('error')}")
    return [v for v in result if v.get("impact") in impacts]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    """One line per violation and up to three offending elements, for an assertion message."""
    lines = []
    for v in violations:
        targets = "; ".join(str(n.get("target")) for n in v.get("nodes", [])[:3])
        lines.append(f"{v.get('impact')} {v.get('id')}: {v.get('help')} ({len(v.get('nodes', []))}x: {targets})")
    return "\n".join(lines)


def zoom(driver: WebDriver, size: tuple[int, int], factor: float) -> None:
    """Browser zoom: the page laid out in ``size / factor`` CSS pixels at ``factor`` device pixels
    each. Not emulated as a phone, whose layout viewport would widen to fit overflowing content
    and so hide the horizontal scrolling this is meant to reveal."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": int(size[0] / factor), "height": int(size[1] / factor), "deviceScaleFactor": factor, "mobile": False},
    )


def horizontal_overflow(driver: WebDriver) -> int:
    """CSS pixels the page is wider than its viewport (0: no horizontal scrolling)."""
    return int(
        driver.execute_script(
            "var e = document.documentElement;"
            " return Math.max(e.scrollWidth, document.body.scrollWidth) - e.clientWidth;"
        )
    )


def transferred(driver: WebDriver) -> list[dict[str, Any]]:
    """Every request of this document so far (the page itself first) with the bytes it moved
    over the network (``transferSize``: compressed body plus headers; 0 when cached) and
    the decoded body size."""
    return list(
        driver.execute_script(
            "var all = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'));"
            "return all.map(function (e) { return {name: e.name, transfer: e.transferSize,"
            " decoded: e.decodedBodySize, encoded: e.encodedBodySize}; });"
        )
    )


def overflowing_elements(driver: WebDriver, limit: int = 5) -> list[str]:
    """The innermost elements reaching past the viewport's right edge (to say what to fix)."""
    return list(
        driver.execute_script(
            "var w = document.documentElement.clientWidth, out = [];"
            "document.querySelectorAll('body *').forEach(function (e) {"
            "  var r = e.getBoundingClientRect();"
            "  if (r.right > w + 0.5 && !Array.prototype.some.call(e.children, function (c) {"
            "      return c.getBoundingClientRect().right > w + 0.5; }))"
            "    out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')"
            "             + (e.className && e.className.baseVal === undefined"
            "                ? '.' + String(e.className).split(' ').join('.') : '')"
            "             + ' right=' + Math.round(r.right)"
            "             + ' ' + JSON.stringify((e.textContent || '').slice(0, 40)));"
            "});"
            "return out.slice(0, arguments[0]);",
            limit,
        )
    )
