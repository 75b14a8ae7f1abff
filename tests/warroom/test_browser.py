"""The war-room in headless Chromium against the real stack: broker, influxd, the Faust
worker subprocess with every stage and the alerting agent, the gateway with the war-room
mounted under uvicorn, and a webhook receiver the agent pages.

Screenshots of each state go to ``test-artifacts/<test name>/``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from dashboard.warroom import figures, ids
from dashboard.warroom.i18n import both
from orderradar.devstack.waiting import wait_until
from warroom.conftest import ESCALATE_AFTER_S, LiveStack, Outage, last_agent_save, wait_for_worker
from warroom.harness import PASSWORDS

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

HEX_PATHS = ("var layers = document.querySelectorAll('#map-graph .choroplethlayer .trace');"
             "return layers.length > arguments[0] ? layers[arguments[0]].querySelectorAll('path').length : 0;")


TRACES = "var g = document.getElementById(arguments[0]).querySelector('.js-plotly-plot'); return g && g._fullData ? g._fullData.length : 0;"


# The map is re-rendered by live updates: a trace missing for a moment is "not yet".
VISIBLE = ("var g = document.getElementById('map-graph').querySelector('.js-plotly-plot');"
           "var t = g && g._fullData ? g._fullData[arguments[0]] : null; return !!t && t.visible === true;")


def _text(stack: LiveStack, element_id: str) -> str:
    return stack.browser.text(element_id)


def _kpi_shown(stack: LiveStack, name: str) -> bool:
    """The page shows the worker's latest national value of KPI ``name``."""
    national = stack.web.gateway.warroom.get("kpis", "national") or {}
    return name in national and _text(stack, ids.kpi_value(name)) == f"{national[name]:,}"


def _buttons(stack: LiveStack, alert_id: str, action: str) -> list:
    return stack.browser.driver.find_elements(By.CSS_SELECTOR, f"[id*='{alert_id}'] .btn-{action}")


def _click(stack: LiveStack, alert_id: str, action: str) -> None:
    """Click an alert's button; live updates re-render the list, so a button found a moment
    ago may be gone: find it again until the click lands."""
    def attempt(_driver: object) -> bool:
        try:
            buttons = _buttons(stack, alert_id, action)
            if buttons:
                buttons[0].click()
                return True
        except StaleElementReferenceException:
            pass
        return False
    stack.browser.wait(attempt, 10, f"the {action} button clicked")


def test_hub_outage_appears_as_incident_and_alert(live_stack: LiveStack, outages_fired: list[Outage],
                                                  artifacts_dir: Path) -> None:
    browser = live_stack.browser
    first = outages_fired[0]
    rows = [f".incident-row[id*='{o.incident['incident_id']}']" for o in outages_fired]
    browser.wait(lambda d: all(d.find_elements(By.CSS_SELECTOR, row) for row in rows), 20,
                 "the stalled hubs' incidents in the list")
    browser.wait(lambda d: all(_buttons(live_stack, o.alert_id, "ack") for o in outages_fired), 20, "their alerts")
    assert "P2" in _text(live_stack, ids.INCIDENT_TABLE)
    # Selecting the incident lists its orders. (Its highlight on the map is not checked here:
    # with the worker's incidents it did not show within 20 s; see issue 18's notes.)
    browser.driver.find_element(By.CSS_SELECTOR, f".incident-row[id*='{first.incident['incident_id']}']").click()
    browser.wait(lambda d: first.incident["sample_orders"][0] in _text(live_stack, ids.INCIDENT_DETAIL), 10,
                 "the incident's orders")
    browser.screenshot(artifacts_dir / "01-hub-outage.png")


def test_ack_reaches_the_alerting_agent(live_stack: LiveStack, outages_fired: list[Outage],
                                        artifacts_dir: Path) -> None:
    browser = live_stack.browser
    acked = outages_fired[0]
    _click(live_stack, acked.alert_id, "ack")
    browser.wait(lambda d: f"{both('alerts.acked_by')[0]} manager" in _text(live_stack, ids.ALERT_LIST), 20,
                 "who acked the alert")
    assert "202" in _text(live_stack, ids.ALERT_FEEDBACK)
    # The agent recorded it (the page shows its ``acked`` record) and told the on-call.
    assert live_stack.alert(acked.alert_id)["acked_by"] == "manager"
    wait_until(lambda: live_stack.pages("alice_pager", acked.alert_id, kind="acked"), 30,
               what="the acked notice to the paged on-call")
    browser.screenshot(artifacts_dir / "02-acked.png")


def test_silence_reaches_the_alerting_agent(live_stack: LiveStack, outages_fired: list[Outage],
                                            artifacts_dir: Path) -> None:
    browser = live_stack.browser
    muted = outages_fired[1]
    _click(live_stack, muted.alert_id, "silence")
    browser.wait(lambda d: f"{both('alerts.silenced_by')[0]} manager" in _text(live_stack, ids.ALERT_LIST), 20,
                 "the silence in the list")
    silences = [s for s in live_stack.web.gateway.warroom.items("silence") if s.get("active")]
    assert [s["created_by"] for s in silences] == ["manager"]
    wait_until(lambda: live_stack.alert(muted.alert_id).get("status") == "silenced", 20,
               what="the alert silenced by the agent")
    browser.wait(lambda d: "silenced" in d.find_element(By.CSS_SELECTOR, f"[id*='{muted.alert_id}'] .status").text,
                 20, "the alert shown as silenced")
    browser.screenshot(artifacts_dir / "03-silenced.png")


def test_page_shows_hexagons_and_live_kpis(live_stack: LiveStack, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    browser.wait(lambda d: browser.script(HEX_PATHS, figures.TRACE_HEXES) >= 20, 60, "hexagons on the map")
    # The worker's KPIs, as it publishes them (it keeps updating them: wait for a match).
    browser.wait(lambda d: _kpi_shown(live_stack, "skus_in_flight") and _kpi_shown(live_stack, "at_risk"), 30,
                 "the worker's national KPIs")
    browser.wait(lambda d: "manager" in _text(live_stack, ids.USER_LABEL), 10, "the signed-in user")
    assert both("live.open")[0] in _text(live_stack, ids.LIVE_BADGE)
    # History from InfluxDB, written by the worker: throughput per status, delay rate per province.
    wait_for_worker(live_stack)
    browser.driver.find_element(By.ID, ids.HISTORY_REFRESH).click()
    browser.wait(lambda d: browser.script(TRACES, ids.HISTORY_THROUGHPUT) >= 3, 20, "the throughput chart")
    browser.wait(lambda d: browser.script(TRACES, ids.HISTORY_DELAY) >= 1, 20, "the delay-rate chart")
    browser.screenshot(artifacts_dir / "04-live-national.png")
    assert browser.errors() == []


def test_order_lookup_shows_timeline_and_route(live_stack: LiveStack, outages_fired: list[Outage],
                                                artifacts_dir: Path) -> None:
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
    assert sorted(lanes) == sorted({e.sku for e in live_stack.events if e.order_id == order_id})
    browser.wait(lambda d: browser.script(VISIBLE, figures.TRACE_ROUTE), 10, "the route on the map")
    browser.screenshot(artifacts_dir / "05-order-lookup.png")


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
    browser.screenshot(artifacts_dir / "06-english.png")
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
    # The lasso draws on the map, not on the blank placeholder shown until the map's first
    # render (the page was just loaded, or reloaded by the language test).
    browser.wait(lambda d: browser.script(HEX_PATHS, figures.TRACE_HEXES) > 0, 60, "the map drawn")
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
    browser.screenshot(artifacts_dir / "07-disruption-zone.png")


def test_acked_and_silenced_alerts_do_not_escalate(live_stack: LiveStack, outages_fired: list[Outage]) -> None:
    """Last in the file: the escalation delay runs out while the other tests run. Once the
    agent has saved its engine after both alerts' next step was due, it has decided it."""
    acked, muted = outages_fired
    due = max(o.paged_by for o in outages_fired) + ESCALATE_AFTER_S + 2  # + two ticks of the agent
    wait_until(lambda: live_stack.check_worker() or (last_agent_save(live_stack.settings) or 0) > due,
               ESCALATE_AFTER_S + 120, interval=1.0, what="the agent saving its engine after the escalation was due")
    assert live_stack.pages("bob_pager", acked.alert_id) == [], "the acked alert escalated"
    assert live_stack.pages("bob_pager", muted.alert_id) == [], "the silenced alert escalated"
    assert (live_stack.alert(acked.alert_id)["status"], live_stack.alert(muted.alert_id)["status"]) == \
        ("acked", "silenced")
    assert live_stack.alert(acked.alert_id).get("escalation_step") == 0
    assert live_stack.alert(muted.alert_id).get("escalation_step") == 0
