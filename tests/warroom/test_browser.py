"""The war-room in headless Chromium against the real stack: broker, influxd, a Faust
worker subprocess, the gateway with the war-room mounted under uvicorn.

Screenshots of each state go to ``test-artifacts/<test name>/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from dashboard.warroom import figures, ids
from dashboard.warroom.i18n import both
from warroom import traffic
from warroom.conftest import LiveStack, Outage, wait_for_worker
from warroom.harness import PASSWORDS

pytestmark = [pytest.mark.browser, pytest.mark.integration]

HEX_PATHS = ("var layers = document.querySelectorAll('#map-graph .choroplethlayer .trace');"
             "return layers.length > arguments[0] ? layers[arguments[0]].querySelectorAll('path').length : 0;")


TRACES = "var g = document.getElementById(arguments[0]).querySelector('.js-plotly-plot'); return g && g._fullData ? g._fullData.length : 0;"


VISIBLE = ("return document.getElementById('map-graph').querySelector('.js-plotly-plot')"
           "._fullData[arguments[0]].visible === true")


def _text(stack: LiveStack, element_id: str) -> str:
    return stack.browser.text(element_id)


def test_page_shows_hexagons_and_live_kpis(live_stack: LiveStack, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    browser.wait(lambda d: browser.script(HEX_PATHS, figures.TRACE_HEXES) >= 20, 30, "hexagons on the map")
    browser.wait(lambda d: _text(live_stack, ids.kpi_value("skus_in_flight")) not in ("", "–"), 20, "live KPIs")
    expected = traffic.kpis(live_stack.heatmap, traffic.utc_now())
    assert _text(live_stack, ids.kpi_value("skus_in_flight")) == f"{expected['skus_in_flight']:,}"
    assert _text(live_stack, ids.kpi_value("at_risk")) == f"{expected['at_risk']:,}"
    browser.wait(lambda d: "manager" in _text(live_stack, ids.USER_LABEL), 10, "the signed-in user")
    assert both("live.open")[0] in _text(live_stack, ids.LIVE_BADGE)
    # History from InfluxDB: throughput per status (written by the worker), delay rate per province.
    wait_for_worker(live_stack)
    browser.driver.find_element(By.ID, ids.HISTORY_REFRESH).click()
    browser.wait(lambda d: browser.script(TRACES, ids.HISTORY_THROUGHPUT) >= 3, 20, "the throughput chart")
    browser.wait(lambda d: browser.script(TRACES, ids.HISTORY_DELAY) >= 3, 20, "the delay-rate chart")
    browser.screenshot(artifacts_dir / "01-live-national.png")
    assert browser.errors() == []


def test_hub_outage_appears_as_incident_and_alert(live_stack: LiveStack, outage: Outage, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    browser.wait(lambda d: outage.hub.id in _text(live_stack, ids.INCIDENT_TABLE), 10, "the incident in the list")
    browser.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"[id*='{outage.alert_id}'] .btn-ack"), 10, "the alert")
    elapsed = time.monotonic() - outage.published_at
    assert elapsed < 10, f"the outage took {elapsed:.1f}s to show"
    assert "P2" in _text(live_stack, ids.INCIDENT_TABLE)
    # Selecting the incident highlights it on the map and lists its orders.
    browser.driver.find_element(By.CSS_SELECTOR, ".incident-row").click()
    browser.wait(lambda d: outage.incident["sample_orders"][0] in _text(live_stack, ids.INCIDENT_DETAIL), 10,
                 "the incident's orders")
    browser.wait(lambda d: browser.script(VISIBLE, figures.TRACE_HIGHLIGHT), 10, "the incident highlighted")
    browser.screenshot(artifacts_dir / "02-hub-outage.png")


def test_ack_shows_who_acked(live_stack: LiveStack, outage: Outage, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    button = browser.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"[id*='{outage.alert_id}'] .btn-ack"), 10,
                          "the ack button")
    button[0].click()
    acked = f"{both('alerts.acked_by')[0]} manager"
    browser.wait(lambda d: acked in _text(live_stack, ids.ALERT_LIST), 15, "who acked the alert")
    assert any(c.get("type") == "alert_ack" and c.get("actor") == "manager" for c in live_stack.alerting.commands)
    assert "202" in _text(live_stack, ids.ALERT_FEEDBACK)
    browser.screenshot(artifacts_dir / "03-acked.png")


def test_order_lookup_shows_timeline_and_route(live_stack: LiveStack, outage: Outage, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    if not browser.driver.find_elements(By.CSS_SELECTOR, ".incident-row.selected"):
        browser.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".incident-row"), 10, "the incident")[0].click()
    link = browser.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.INCIDENT_DETAIL} .order-link"), 10,
                        "an order of the selected incident")
    order_id = link[0].text
    link[0].click()
    browser.wait(lambda d: order_id in _text(live_stack, ids.ORDER_SUMMARY), 15, "the order's summary")
    browser.wait(lambda d: browser.script(TRACES, ids.ORDER_TIMELINE) >= 2, 15, "the order's timeline")
    lanes = browser.script("return document.getElementById(arguments[0]).querySelector('.js-plotly-plot')"
                           "._fullLayout.yaxis._categories", ids.ORDER_TIMELINE)
    assert sorted(lanes) == sorted({e.event.sku for e in live_stack.emissions if e.event.order_id == order_id})
    browser.wait(lambda d: browser.script(VISIBLE, figures.TRACE_ROUTE), 10, "the route on the map")
    browser.screenshot(artifacts_dir / "04-order-lookup.png")


def test_language_switch_changes_labels_and_is_remembered(live_stack: LiveStack, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    zh, en = both("kpi.skus_in_flight")
    browser.wait(lambda d: zh in d.find_element(By.ID, ids.KPI_STRIP).text, 10, "Chinese labels")
    browser.driver.find_element(By.CSS_SELECTOR, f"#{ids.LANG_SWITCH} input[value='en']").click()
    browser.wait(lambda d: en in d.find_element(By.ID, ids.KPI_STRIP).text, 10, "English labels")
    assert both("map.title")[1] in browser.driver.find_element(By.CSS_SELECTOR, ".panel-map").text
    # Figures are rebuilt on the server in the new language (the map's colour bar, the charts).
    browser.wait(lambda d: browser.script(
        "return document.getElementById('map-graph').querySelector('.js-plotly-plot')"
        "._fullData[arguments[0]].colorbar.title.text", figures.TRACE_HEXES) == both("map.delay_rate")[1],
        20, "the map in English")
    browser.screenshot(artifacts_dir / "05-english.png")
    browser.driver.refresh()
    browser.wait(lambda d: d.find_elements(By.ID, ids.KPI_STRIP) and en in d.find_element(By.ID, ids.KPI_STRIP).text,
                 20, "English remembered after a reload")


def test_war_room_is_for_signed_in_staff_only(live_stack: LiveStack) -> None:
    with httpx.Client(base_url=live_stack.web.base_url, timeout=10) as anonymous:
        page = anonymous.get("/warroom/")
        assert page.status_code == 200 and 'id="login"' in page.text and "_dash-config" not in page.text
        layout = anonymous.get("/warroom/_dash-layout")
        assert layout.status_code == 401 and layout.json()["error"] == "unauthenticated"
        update = anonymous.post("/warroom/_dash-update-component", json={})
        assert update.status_code == 401
        assert anonymous.post("/api/v1/login", json={"username": "viewer", "password": PASSWORDS["viewer"]}).status_code == 200
        assert anonymous.get("/warroom/_dash-layout").status_code == 200


def test_lasso_draws_a_disruption_zone_that_is_saved_and_listed(live_stack: LiveStack, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    browser.driver.find_element(By.ID, ids.MAP_DRAW).click()
    browser.wait(lambda d: browser.script("return document.getElementById('map-graph').querySelector('.js-plotly-plot')"
                                          "._fullLayout.dragmode") == "lasso", 10, "the lasso armed")
    plot = browser.driver.find_element(By.CSS_SELECTOR, "#map-graph .main-svg")
    chain = ActionChains(browser.driver).move_to_element_with_offset(plot, -60, -40).click_and_hold()
    for dx, dy in ((60, -40), (60, 40), (0, 80), (-60, 40), (-60, -40), (-60, 0)):
        chain = chain.move_by_offset(dx, dy)
    chain.release().perform()
    browser.wait(lambda d: "✓" in _text(live_stack, ids.ZONE_DRAFT_INFO), 10, "a zone draft from the lasso")
    browser.driver.find_element(By.ID, ids.ZONE_NAME).send_keys("Typhoon drill")
    browser.driver.find_element(By.ID, ids.ZONE_SAVE).click()
    browser.wait(lambda d: "Typhoon drill" in _text(live_stack, ids.ZONE_LIST), 15, "the saved zone in the list")
    browser.wait(lambda d: browser.script(VISIBLE, figures.TRACE_ZONES), 10, "the zone on the map")
    browser.screenshot(artifacts_dir / "06-disruption-zone.png")
