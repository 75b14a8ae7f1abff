"""The customer tracking page in headless Chromium against the real stack.

Real embedded broker and influxd (session fixtures), the real gateway with the tracking
routes in a child process, ``order-updates`` records published as the worker would.
Screenshots (phone 390x844 and desktop 1366x900) land in ``test-artifacts/``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from config.settings import Settings
from tracking.browser import DESKTOP, PHONE, chromium, full_page_screenshot, wait_for
from tracking.stack import Bus, TileServer, WebServer, timeline

pytestmark = [pytest.mark.browser, pytest.mark.integration]

NOW = datetime.now(UTC).replace(microsecond=0)
# Hangzhou sorting hub (coarsened by the gateway to 2 decimals) and a street nearby.
HUB = {"lat": 30.27412, "lon": 120.15514}
STREET = {"lat": 30.25873, "lon": 120.16421}
INTERNAL_WORDS = ("SH-HUB-07", "PDA-9931", "courier-77", "hub_arrival", "linehaul", "outbound_scan", "tms")


def _at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat()


BEFORE_HUB = [
    ("paid", _at(30)),
    ("picked", _at(27)),
    ("packed", _at(26)),
    ("outbound_scan", _at(22)),
    ("linehaul", _at(20)),
]


def _sku(
    status: str, steps: list[tuple[str, str]], position: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    sku: dict[str, Any] = {
        "status": status,
        "qty": 1,
        "timeline": timeline(*steps),
        "device_id": "PDA-9931",
        "courier_id": "courier-77",
        "node": "SH-HUB-07",
    }
    if position is not None:
        sku["position"] = position
    sku.update(extra)
    return sku


def in_transit(order_id: str, bus: Bus, seq: int = 1) -> None:
    """Three items; two reached the Hangzhou hub, one is still on the line-haul truck."""
    eta = {"eta": (NOW + timedelta(hours=6)).isoformat()}
    bus.order_update(
        order_id,
        seq,
        {
            "sku-a": _sku("hub_arrival", BEFORE_HUB + [("hub_arrival", _at(3))], HUB, **eta),
            "sku-b": _sku("hub_arrival", BEFORE_HUB + [("hub_arrival", _at(3))], HUB, **eta),
            "sku-c": _sku(
                "linehaul", BEFORE_HUB, {"lat": 30.9, "lon": 120.4}, eta=(NOW + timedelta(hours=9)).isoformat()
            ),
        },
        rollup={"status": "linehaul", "promised_by": (NOW + timedelta(hours=12)).isoformat()},
    )


def fix(point: dict[str, float], age: timedelta = timedelta(0)) -> dict[str, Any]:
    """A position as the worker publishes it: with the event time of the fix."""
    return {**point, "time": (datetime.now(UTC) - age).isoformat()}


def out_for_delivery(order_id: str, bus: Bus, seq: int, position: dict[str, Any] | None = None) -> None:
    """Two of the three items are with the courier, whose position is precise now."""
    position = position or fix(STREET)
    steps = BEFORE_HUB + [("hub_arrival", _at(3)), ("out_for_delivery", _at(1))]
    eta = {"eta": (NOW + timedelta(hours=2)).isoformat()}
    bus.order_update(
        order_id,
        seq,
        {
            "sku-a": _sku("out_for_delivery", steps, position, **eta),
            "sku-b": _sku("out_for_delivery", steps, position, **eta),
            "sku-c": _sku(
                "hub_arrival", BEFORE_HUB + [("hub_arrival", _at(0.5))], HUB, eta=(NOW + timedelta(hours=9)).isoformat()
            ),
        },
        rollup={"status": "hub_arrival", "promised_by": (NOW + timedelta(hours=12)).isoformat()},
    )


def delivered(order_id: str, bus: Bus, seq: int) -> None:
    steps = BEFORE_HUB + [("hub_arrival", _at(3)), ("out_for_delivery", _at(1)), ("delivered", _at(0.2))]
    bus.order_update(
        order_id,
        seq,
        {
            "sku-a": _sku("delivered", steps, STREET),
            "sku-b": _sku("delivered", steps, STREET),
            "sku-c": _sku("delivered", steps, STREET),
        },
        rollup={"status": "delivered"},
    )


def delayed(order_id: str, bus: Bus, seq: int) -> None:
    """The third item is held by a typhoon; its new ETA is tomorrow."""
    steps = BEFORE_HUB + [("hub_arrival", _at(3)), ("out_for_delivery", _at(1))]
    eta = {"eta": (NOW + timedelta(hours=2)).isoformat()}
    bus.order_update(
        order_id,
        seq,
        {
            "sku-a": _sku("out_for_delivery", steps, STREET, **eta),
            "sku-b": _sku("out_for_delivery", steps, STREET, **eta),
            "sku-c": _sku(
                "exception",
                BEFORE_HUB + [("hub_arrival", _at(3)), ("exception", _at(0.4))],
                HUB,
                reason="weather",
                eta=(NOW + timedelta(hours=26)).isoformat(),
            ),
        },
        rollup={
            "status": "exception",
            "eta": (NOW + timedelta(hours=26)).isoformat(),
            "promised_by": (NOW + timedelta(hours=12)).isoformat(),
        },
    )


# ---- page probes ----------------------------------------------------------------------


def text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def conn_state(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "conn").get_attribute("data-state"))


def step_state(driver: WebDriver, milestone: str) -> str:
    return str(
        driver.find_element(By.CSS_SELECTOR, f'#timeline [data-milestone="{milestone}"]').get_attribute("data-state")
    )


def step_time(driver: WebDriver, milestone: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'#timeline [data-milestone="{milestone}"] time').text)


def marker(driver: WebDriver, selector: str = "#map circle.marker") -> dict[str, str] | None:
    # Read in one script: the map is redrawn on every update, so element handles go stale.
    found = driver.execute_script(
        """
        var m = document.querySelector(arguments[0]);
        return m && {lat: m.getAttribute('data-lat'), lon: m.getAttribute('data-lon'),
                     class: m.getAttribute('class')};""",
        selector,
    )
    return dict(found) if found else None


def markers_at(driver: WebDriver) -> set[str]:
    return set(
        driver.execute_script(
            "return Array.from(document.querySelectorAll('#map circle.marker'), m => m.getAttribute('data-lat'));"
        )
    )


def mark_document(driver: WebDriver) -> None:
    """A flag that survives only while the page is not reloaded."""
    driver.execute_script("window.__sameDocument = true;")


def same_document(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return window.__sameDocument === true;"))


def csp_errors(driver: WebDriver) -> list[str]:
    entries = cast(Any, driver).get_log("browser")  # Chrome's console, not in the remote API
    return [e["message"] for e in entries if "Content Security Policy" in e["message"]]


def open_page(driver: WebDriver, web: WebServer, token: str, query: str = "") -> None:
    driver.get(f"{web.url}/t/{token}{query}")
    wait_for(driver, lambda d: conn_state(d) == "live", 20, "the page never went live")


# ---- tests ----------------------------------------------------------------------------


def test_a_link_shows_the_order_and_follows_it_live(web: WebServer, bus: Bus, artifacts_dir: Path) -> None:
    order_id = "o-track-live-1"
    in_transit(order_id, bus)
    token = web.issue_link(order_id)

    with chromium(PHONE, lang="zh-CN") as phone:
        open_page(phone, web, token)
        assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
        wait_for(phone, lambda d: text(d, "milestone") == "运输中", 10, "headline")
        assert step_state(phone, "in_transit") == "current" and step_state(phone, "shipped") == "done"
        assert text(phone, "items-list") == "全部 3 件商品运输中"
        first = wait_for(phone, marker, 10, "no marker on the map")
        assert first is not None
        # Before the last mile the gateway coarsens, and the page shows no more than it got.
        assert (first["lat"], first["lon"]) == ("30.27", "120.16") and "courier" not in first["class"]
        assert text(phone, "eta") != "—"
        mark_document(phone)

        out_for_delivery(order_id, bus, seq=2)
        wait_for(phone, lambda d: "30.25873" in markers_at(d), 15, "the courier marker never moved")
        moved = marker(phone, "#map circle.marker.courier")
        assert moved is not None and (moved["lat"], moved["lon"]) == ("30.25873", "120.16421")
        assert step_state(phone, "out_for_delivery") == "partial" and step_time(phone, "out_for_delivery")
        assert "3 件商品中有 2 件派送中" in text(phone, "items-list")
        assert text(phone, "map-caption") == "快递员实时位置"
        assert same_document(phone), "the page reloaded instead of updating live"
        full_page_screenshot(phone, artifacts_dir / "phone-zh-out-for-delivery.png", PHONE)

        delayed(order_id, bus, seq=3)
        wait_for(phone, lambda d: d.find_element(By.ID, "delay").is_displayed(), 15, "no delay notice")
        assert "天气影响" in text(phone, "delay-reason")
        assert text(phone, "delay-eta").startswith("新的预计送达时间")
        assert text(phone, "milestone") == "异常"
        page_text = phone.find_element(By.TAG_NAME, "body").text
        for word in INTERNAL_WORDS:
            assert word not in page_text
        assert same_document(phone)
        assert csp_errors(phone) == []
        full_page_screenshot(phone, artifacts_dir / "phone-zh-delayed.png", PHONE)

    with chromium(DESKTOP, lang="en-US") as desktop:
        open_page(desktop, web, token)
        wait_for(desktop, lambda d: d.find_element(By.ID, "delay").is_displayed(), 10, "no delay notice")
        assert desktop.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        assert text(desktop, "milestone") == "Delayed"
        assert "Weather" in text(desktop, "delay-reason")
        assert "2 of 3 items out for delivery" in text(desktop, "items-list")
        full_page_screenshot(desktop, artifacts_dir / "desktop-en-delayed.png", DESKTOP)
        # The language switch: same link, other language, no order id anywhere in the URL.
        desktop.find_element(By.CSS_SELECTOR, 'nav a[hreflang="zh-CN"]').click()
        wait_for(desktop, lambda d: text(d, "milestone") == "异常", 15, "switch to Chinese")
        assert order_id not in desktop.current_url
        assert csp_errors(desktop) == []


def test_a_server_restart_shows_reconnecting_then_live_with_nothing_missed(
    web: WebServer, bus: Bus, artifacts_dir: Path
) -> None:
    order_id = "o-track-restart-1"
    in_transit(order_id, bus)
    token = web.issue_link(order_id)

    with chromium(DESKTOP, lang="en-US") as desktop:
        open_page(desktop, web, token)
        wait_for(desktop, lambda d: text(d, "milestone") == "In transit", 10, "headline")
        mark_document(desktop)

        web.kill()
        wait_for(desktop, lambda d: conn_state(d) == "reconnecting", 20, "no reconnecting state")
        live_region = desktop.find_element(By.ID, "conn")
        assert live_region.get_attribute("aria-live") == "polite"
        assert "reconnecting" in live_region.text.lower()
        full_page_screenshot(desktop, artifacts_dir / "desktop-en-reconnecting.png", DESKTOP)

        # Milestones reached while the server is down must all show after it is back.
        out_for_delivery(order_id, bus, seq=2)
        delivered(order_id, bus, seq=3)
        web.start()

        wait_for(desktop, lambda d: conn_state(d) == "live", 60, "never live again after the restart")
        wait_for(desktop, lambda d: text(d, "milestone") == "Delivered", 10, "the delivery was missed")
        assert step_time(desktop, "out_for_delivery"), "the out-for-delivery milestone was missed"
        assert step_state(desktop, "delivered") == "done"
        assert desktop.find_element(By.TAG_NAME, "body").get_attribute("data-seq") == "3"
        # Live sharing stops at delivery: no marker, and the caption says so.
        assert marker(desktop) is None
        assert text(desktop, "map-caption") == "Delivered: live location sharing has ended"
        assert same_document(desktop), "the page reloaded instead of resuming"
        full_page_screenshot(desktop, artifacts_dir / "desktop-en-delivered.png", DESKTOP)


def test_foreign_unknown_and_revoked_links_show_not_found(web: WebServer, bus: Bus, artifacts_dir: Path) -> None:
    in_transit("o-track-mine", bus)
    revoked = web.issue_link("o-track-mine")
    web.revoke_link(revoked)
    foreign = "Zm9yZWlnbi10b2tlbi1pc3N1ZWQtZWxzZXdoZXJlLTEyMzQ1Ng"  # never issued by this deployment

    with chromium(PHONE, lang="en-US") as phone:
        for token in (foreign, revoked):
            phone.get(f"{web.url}/t/{token}")
            heading = phone.find_element(By.TAG_NAME, "h1").text
            assert heading == "找不到此跟踪链接"
            assert "This tracking link is not available" in phone.find_element(By.TAG_NAME, "body").text
            assert "o-track-mine" not in phone.page_source
        full_page_screenshot(phone, artifacts_dir / "phone-not-found.png", PHONE)


def test_tiles_when_configured_without_leaking_the_link(
    stack_settings: Settings, bus: Bus, tmp_path: Path, artifacts_dir: Path
) -> None:
    order_id = "o-track-tiles-1"
    out_for_delivery(order_id, bus, seq=1)
    with TileServer() as tiles:
        web = WebServer(stack_settings, tmp_path, tiles=tiles.template).start()
        try:
            token = web.issue_link(order_id)
            with chromium(PHONE, lang="en-US") as phone:
                open_page(phone, web, token)
                wait_for(phone, lambda d: marker(d, "#map circle.marker.courier"), 10, "no courier marker")
                wait_for(phone, lambda d: len(tiles.requests) >= 4, 15, "no tiles were fetched")
                # Street level with tiles (zoom 12+: ~40 m a pixel) over a courier in Hangzhou.
                zooms = {int(path.split("/")[1]) for path, _ in tiles.requests}
                assert max(zooms) >= 12, zooms
                assert all(referer is None for _, referer in tiles.requests), "the link leaked as Referer"
                assert "Test tiles" in text(phone, "attribution")
                assert csp_errors(phone) == []
                full_page_screenshot(phone, artifacts_dir / "phone-en-tiles.png", PHONE)
        finally:
            web.stop()


def caption(driver: WebDriver) -> tuple[str, str]:
    found = driver.execute_script(
        "var c = document.getElementById('map-caption'); return [c.textContent, c.dataset.live || ''];"
    )
    return str(found[0]), str(found[1])


def test_an_old_position_shows_its_age_and_only_a_fresh_one_is_live(
    web: WebServer, bus: Bus, artifacts_dir: Path
) -> None:
    order_id = "o-track-age-1"
    out_for_delivery(order_id, bus, seq=1, position=fix(STREET, timedelta(minutes=40, seconds=10)))
    token = web.issue_link(order_id)

    with chromium(PHONE, lang="en-US") as phone:
        open_page(phone, web, token)
        wait_for(phone, lambda d: marker(d, "#map circle.marker.courier"), 10, "no courier marker")
        assert caption(phone) == ("Courier's last known location · position 40 min ago", "false")
        mark_document(phone)
        out_for_delivery(order_id, bus, seq=2, position=fix(STREET))
        wait_for(phone, lambda d: caption(d) == ("Courier's live location", "true"), 15, "a fresh fix is not live")
        assert same_document(phone)

    with chromium(PHONE, lang="zh-CN") as phone:
        out_for_delivery(order_id, bus, seq=3, position=fix(STREET, timedelta(minutes=40, seconds=10)))
        open_page(phone, web, token)
        wait_for(phone, lambda d: "40 分钟前的位置" in caption(d)[0], 15, "no age in Chinese")
        assert caption(phone) == ("快递员最后位置 · 40 分钟前的位置", "false")
        full_page_screenshot(phone, artifacts_dir / "phone-zh-position-age.png", PHONE)


@pytest.mark.slow
def test_the_age_grows_while_the_page_stays_open(web: WebServer, bus: Bus) -> None:
    order_id = "o-track-age-2"
    out_for_delivery(order_id, bus, seq=1, position=fix(STREET, timedelta(seconds=80)))
    token = web.issue_link(order_id)
    with chromium(PHONE, lang="en-US") as phone:
        open_page(phone, web, token)
        wait_for(phone, lambda d: caption(d)[1] == "true", 10, "an 80 s old fix should still be live")
        mark_document(phone)
        # No update arrives: the page's own 30 s refresh turns it into an aged position.
        wait_for(
            phone,
            lambda d: caption(d) == ("Courier's last known location · position 2 min ago", "false"),
            75,
            "the age never updated",
        )
        assert same_document(phone)


def test_processing_items_show_an_early_progress_bar_and_ordered_has_its_time(
    web: WebServer, bus: Bus, artifacts_dir: Path
) -> None:
    order_id = "o-track-progress-1"
    paid_at = NOW - timedelta(hours=5, minutes=7)
    # The worker keeps only the newest timeline entries; the payment lives on in stage_times.
    steps = [
        {"status": status, "event_time": _at(hours), "source": "oms"}
        for status, hours in (("picked", 4), ("packed", 3))
    ]
    stage_times = {"paid": paid_at.isoformat(), "picked": _at(4), "packed": _at(3)}
    bus.order_update(
        order_id,
        1,
        {
            f"sku-{i:02d}": {"status": "packed", "qty": 1, "timeline": steps, "stage_times": stage_times}
            for i in range(11)
        },
        rollup={"status": "packed"},
    )
    token = web.issue_link(order_id)

    with chromium(PHONE, lang="en-US") as phone:
        open_page(phone, web, token)
        wait_for(phone, lambda d: text(d, "items-list") == "All 11 items processing", 10, "items")
        bar = phone.execute_script("""
            var li = document.querySelector('#items-list li'), bar = li.querySelector('.bar');
            return [li.dataset.progress, bar.firstChild.getBoundingClientRect().width,
                    bar.getBoundingClientRect().width];""")
        assert bar[0] == "20" and 0 < bar[1] < bar[2] * 0.5, bar
        # The first milestone has the payment's time, in the order's zone (Shanghai here).
        ordered = phone.find_element(By.CSS_SELECTOR, '#timeline [data-milestone="ordered"] time')
        local = paid_at.astimezone(timezone(timedelta(hours=8)))
        assert local.strftime("%H:%M") in ordered.text
        assert ordered.get_attribute("datetime") == paid_at.isoformat()
        full_page_screenshot(phone, artifacts_dir / "phone-en-processing.png", PHONE)
