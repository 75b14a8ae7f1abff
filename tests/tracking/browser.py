"""Headless Chromium for the tracking tests: Debian's chromium and chromedriver, never a download."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE = (390, 844)
DESKTOP = (1366, 900)

T = TypeVar("T")


@contextmanager
def chromium(size: tuple[int, int] = DESKTOP, lang: str = "en-US", timezone: str = "Asia/Shanghai") -> Iterator[WebDriver]:
    """One headless browser with a throw-away profile, sized like a phone or a desktop."""
    profile = tempfile.mkdtemp(prefix="orderradar-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", f"--lang={lang}",
                f"--window-size={size[0]},{size[1]}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    # The customer's phone clock: times on the page are shown in the browser's zone.
    service = Service(str(CHROMEDRIVER), env={**os.environ, "TZ": timezone})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_window_size(*size)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], timeout_s: float = 15.0,
             message: str = "") -> T:
    """Poll ``condition`` until it is truthy (selenium's explicit wait), or fail with ``message``."""
    return WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(condition, message)


def full_page_screenshot(driver: WebDriver, path: Path, size: tuple[int, int]) -> Path:
    """The whole page at the given viewport width (tall pages are captured whole)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": max(size[1], height), "deviceScaleFactor": 1, "mobile": size[0] < 600})
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600})
    return path
