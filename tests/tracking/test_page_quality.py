"""The tracking page as a customer's phone meets it (390x844, Debian's headless Chromium) on the
real web server: language (Accept-Language, ``?lang=``, the remembered choice), axe-core's
accessibility checks in both languages, 200% zoom, the site icon and the not-found page for
every unknown path under ``/t/``. Screenshots in both languages go to ``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from dashboard.tracking.messages import NOT_FOUND
from tracking.browser import (
    PHONE,
    axe_violations,
    chromium,
    describe_violations,
    full_page_screenshot,
    horizontal_overflow,
    overflowing_elements,
    wait_for,
    zoom,
)
from tracking.stack import Bus, WebServer
from tracking.test_tracking_browser import in_transit, open_page, out_for_delivery

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def lang_of(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "html").get_attribute("lang"))


def test_language_accept_language_then_lang_parameter_then_memory(web: WebServer, bus: Bus) -> None:
    order_id = "o-quality-lang"
    in_transit(order_id, bus)
    token = web.issue_link(order_id)
    with chromium(PHONE, lang="en-US") as phone:
        open_page(phone, web, token)
        assert lang_of(phone) == "en"
        open_page(phone, web, token, "?lang=zh-CN")
        assert lang_of(phone) == "zh-CN"
        open_page(phone, web, token)
        assert lang_of(phone) == "zh-CN", "the choice was not remembered"
        open_page(phone, web, token, "?lang=en")
        assert lang_of(phone) == "en", "?lang= did not win over the remembered choice"
        open_page(phone, web, token)
        assert lang_of(phone) == "en"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_accessible_and_readable_at_200_percent(web: WebServer, bus: Bus, artifacts_dir: Path, lang: str) -> None:
    order_id = f"o-quality-a11y-{lang}"
    in_transit(order_id, bus)
    out_for_delivery(order_id, bus, seq=2)
    token = web.issue_link(order_id)
    with chromium(PHONE, lang=lang) as phone:
        open_page(phone, web, token)
        wait_for(phone, lambda d: d.find_elements(By.CSS_SELECTOR, "#map circle.marker"), 15, "the courier on the map")
        assert lang_of(phone) == lang
        full_page_screenshot(phone, artifacts_dir / f"tracking-phone-{lang}.png", PHONE)
        violations = axe_violations(phone)
        assert violations == [], describe_violations(violations)
        zoom(phone, PHONE, 2.0)
        wait_for(phone, lambda d: d.execute_script("return window.innerWidth") == PHONE[0] // 2, 10, "the zoom")
        assert horizontal_overflow(phone) == 0, f"horizontal scrolling at 200% zoom: {overflowing_elements(phone)}"
        phone.save_screenshot(str(artifacts_dir / f"tracking-phone-{lang}-200pct.png"))


def test_favicon_and_not_found_under_t(web: WebServer, bus: Bus) -> None:
    order_id = "o-quality-404"
    in_transit(order_id, bus)
    token = web.issue_link(order_id)
    with httpx.Client(base_url=web.url, timeout=10) as client:
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
        assert icon.content[:4] == b"\x00\x00\x01\x00"
        for path in (f"/t/{token}/extra", "/t/", "/t", "/t/a/b/c", f"/t/{token}/"):
            page = client.get(path, follow_redirects=False)
            assert page.status_code == 404, path
            assert page.headers["content-type"].startswith("text/html"), path
            assert NOT_FOUND["en_heading"] in page.text, path
        assert client.get(f"/t/{token}").status_code == 200
