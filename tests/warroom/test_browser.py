"""The war-room in headless Chromium against the real stack: broker, influxd, the Faust
worker subprocess with every stage and the alerting agent, the gateway with the war-room
mounted under uvicorn, and a webhook receiver the agent pages.

Screenshots of each state go to ``test-artifacts/<test name>/``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import h3
import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from dashboard.warroom import ids, live, map_figures
from dashboard.warroom.basemap import load_basemap
from dashboard.warroom.deps import province_lookup
from dashboard.warroom.i18n import both
from dashboard.warroom.localtime import zone
from geo.regions import RegionIndex
from orderradar.devstack.waiting import wait_until
from stream.contract import OrderEvent, Status
from stream.topics import ORDER_EVENTS
from warroom import outages, traffic
from warroom.conftest import ESCALATE_AFTER_S, LiveStack, Outage, last_agent_save, wait_for_worker
from warroom.harness import HEX_PATHS, PASSWORDS, TIMEZONE, TRACES, VISIBLE, int_attribute

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

STATES = ("open", "growing", "stable", "recovering", "resolved")
# An incident row's text and title, its alert's title and status, read at once (live updates
# re-render them).
TITLES = (
    'var row = document.querySelector(".incident-row[id*=\'" + arguments[0] + "\']");'
    'var card = document.querySelector(".alert-card[id*=\'" + arguments[1] + "\']");'
    "if (!row || !card) { return null; }"
    "return [row.innerText, row.querySelector('.incident-cause').innerText,"
    "        card.querySelector('.alert-title').innerText, card.querySelector('.status').innerText];"
)


#: Hexagons the map must show: the fixture's traffic filled 16 at 10:00 China time with a
#: 12-hour warm-up (20 or more earlier in the morning); its warm-up is now 36 hours.
MIN_HEXES = 10


def _text(stack: LiveStack, element_id: str) -> str:
    return stack.browser.text(element_id)


def _kpi_shown(stack: LiveStack, name: str) -> bool:
    """The page shows the worker's latest national value of KPI ``name``."""
    national = stack.web.gateway.warroom.get("kpis", "national") or {}
    return name in national and _text(stack, ids.kpi_value(name)) == f"{national[name]:,}"


def _act_as_manager(stack: LiveStack, alert_id: str, action: str, shown: str) -> None:
    """Click an alert's ``action`` button; the list then names the manager (``shown``: the label's key)."""
    stack.browser.click_alert(alert_id, action)
    stack.browser.wait(
        lambda d: f"{both(shown)[0]} manager" in _text(stack, ids.ALERT_LIST), 20, f"the {action} in the list"
    )


def test_hub_outage_appears_as_incident_and_alert(
    live_stack: LiveStack, outages_fired: list[Outage], artifacts_dir: Path
) -> None:
    browser = live_stack.browser
    first = outages_fired[0]
    rows = [f".incident-row[id*='{o.incident['incident_id']}']" for o in outages_fired]
    browser.wait(
        lambda d: all(d.find_elements(By.CSS_SELECTOR, row) for row in rows),
        20,
        "the stalled hubs' incidents in the list",
    )
    browser.wait(lambda d: all(browser.alert_buttons(o.alert_id, "ack") for o in outages_fired), 20, "their alerts")
    assert "P2" in _text(live_stack, ids.INCIDENT_TABLE)
    # Titles say what happened, where and how big, in the page's language (zh-CN here):
    # no "hub=HUB-A1", "kind=…", "delay · stable" or "firing".
    for outage in outages_fired:

        def titles(_d: object, o: Outage = outage) -> Any:
            return browser.script(TITLES, o.incident["incident_id"], o.alert_id)

        row_text, title, alert_title, status = browser.wait(titles, 10, "the titles")
        assert "=" not in row_text and "单" in title, row_text
        assert any(f" · {both(f'incident.state.{state}')[0]}" in row_text for state in STATES), row_text
        assert both("incident.kind.delay")[0] in row_text
        assert alert_title.startswith(title.split(" · ")[0]) and "kind=" not in alert_title, alert_title
        assert status in {both(f"alerts.status.{s}")[0] for s in ("firing", "pending", "acked")}, status
    # Selecting the incident lists its orders. (Its highlight on the map is not checked here:
    # with the worker's incidents it did not show within 20 s; see issue 18's notes.)
    browser.driver.find_element(By.CSS_SELECTOR, f".incident-row[id*='{first.incident['incident_id']}']").click()
    browser.wait(
        lambda d: first.incident["sample_orders"][0] in _text(live_stack, ids.INCIDENT_DETAIL),
        10,
        "the incident's orders",
    )
    browser.screenshot(artifacts_dir / "01-hub-outage.png")


def test_ack_reaches_the_alerting_agent(
    live_stack: LiveStack, outages_fired: list[Outage], artifacts_dir: Path
) -> None:
    browser = live_stack.browser
    acked = outages_fired[0]
    _act_as_manager(live_stack, acked.alert_id, "ack", "alerts.acked_by")
    assert "202" in _text(live_stack, ids.ALERT_FEEDBACK)
    # The agent recorded it (the page shows its ``acked`` record) and told the on-call.
    assert live_stack.alert(acked.alert_id)["acked_by"] == "manager"
    wait_until(
        lambda: live_stack.pages("alice_pager", acked.alert_id, kind="acked"),
        30,
        what="the acked notice to the paged on-call",
    )
    browser.screenshot(artifacts_dir / "02-acked.png")


def test_silence_reaches_the_alerting_agent(
    live_stack: LiveStack, outages_fired: list[Outage], artifacts_dir: Path
) -> None:
    browser = live_stack.browser
    muted = outages_fired[1]
    _act_as_manager(live_stack, muted.alert_id, "silence", "alerts.silenced_by")
    silences = [s for s in live_stack.web.gateway.warroom.items("silence") if s.get("active")]
    assert [s["created_by"] for s in silences] == ["manager"]
    wait_until(
        lambda: live_stack.alert(muted.alert_id).get("status") == "silenced", 20, what="the alert silenced by the agent"
    )
    browser.wait(
        lambda d: (
            both("alerts.status.silenced")[0]
            in d.find_element(By.CSS_SELECTOR, f"[id*='{muted.alert_id}'] .status").text
        ),
        20,
        "the alert shown as silenced",
    )
    browser.screenshot(artifacts_dir / "03-silenced.png")


def test_page_shows_hexagons_and_live_kpis(live_stack: LiveStack, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    browser.wait(lambda d: browser.script(HEX_PATHS, map_figures.TRACE_HEXES) >= MIN_HEXES, 60, "hexagons on the map")
    # The worker's KPIs, as it publishes them (it keeps updating them: wait for a match).
    browser.wait(
        lambda d: _kpi_shown(live_stack, "skus_in_flight") and _kpi_shown(live_stack, "at_risk"),
        30,
        "the worker's national KPIs",
    )
    browser.wait(lambda d: "manager" in _text(live_stack, ids.USER_LABEL), 10, "the signed-in user")
    assert both("live.open")[0] in _text(live_stack, ids.LIVE_BADGE)
    # History from InfluxDB, written by the worker: throughput per status, delay rate per province.
    wait_for_worker(live_stack)
    browser.driver.find_element(By.ID, ids.HISTORY_REFRESH).click()
    browser.wait(lambda d: browser.script(TRACES, ids.HISTORY_THROUGHPUT) >= 3, 20, "the throughput chart")
    browser.wait(lambda d: browser.script(TRACES, ids.HISTORY_DELAY) >= 1, 20, "the delay-rate chart")

    # The history ends where the KPIs are (the worker's event time, a minute a step), and says so.
    def history_ends_at_the_kpis(_driver: object) -> bool:
        kpi_at = live.parse_time((live_stack.web.gateway.warroom.get("kpis", "national") or {}).get("at"))
        caption = re.search(r"(\d\d):(\d\d)（", _text(live_stack, ids.HISTORY_WINDOW))
        if kpi_at is None or caption is None:
            return False
        local = kpi_at.astimezone(zone(TIMEZONE))
        shown_end = local.replace(hour=int(caption[1]), minute=int(caption[2]))
        return timedelta(0) <= shown_end - local <= timedelta(minutes=2)

    browser.wait(
        history_ends_at_the_kpis, 30, f"the history ending at the KPIs' time ({_text(live_stack, ids.HISTORY_WINDOW)})"
    )
    browser.screenshot(artifacts_dir / "04-live-national.png")
    assert browser.errors() == []


def test_live_badge_follows_the_feed(live_stack: LiveStack) -> None:
    """The badge's seq moves with the updates the page receives (it froze while KPIs moved)."""
    browser, gateway = live_stack.browser, live_stack.web.gateway.warroom

    def badge_seq() -> int:
        found = re.search(r"seq (\d+)", _text(live_stack, ids.LIVE_BADGE))
        return int(found[1]) if found else -1

    before = gateway.seq
    now = traffic.utc_now()
    for i in range(3):  # new orders: the worker publishes new KPIs and heatmap cells
        event = OrderEvent(
            event_id=f"BADGE{i}-0",
            order_id=f"BADGE{i}",
            sku="SKU1",
            status=Status.PAID,
            event_time=now,
            source="test",
            region="Zhejiang",
            channel="tmall",
        )
        live_stack.feeder.send(ORDER_EVENTS, event.order_id, event.model_dump_json(exclude_none=True).encode())
    live_stack.feeder.flush()
    wait_until(lambda: gateway.seq > before, 60, what="the worker's updates in the gateway")
    target = gateway.seq
    browser.wait(lambda d: badge_seq() >= target, 5, f"the live badge at seq {target} (it shows {badge_seq()})")


def test_kpis_say_what_the_map_cannot_show(live_stack: LiveStack, artifacts_dir: Path) -> None:
    """Parcels of an import from São Paulo stall at their hub: the KPIs count them, the China
    map cannot show them and says so. (Fed once the hub outages have fired: more stalled
    parcels elsewhere would widen those incidents' root cause from the hub to the stage.)"""
    browser = live_stack.browser
    abroad = outages.abroad_stalls(traffic.utc_now() - timedelta(hours=2))
    for sent in abroad:
        live_stack.feeder.send(ORDER_EVENTS, sent.event.order_id, sent.value, int(sent.received.timestamp() * 1000))
    live_stack.feeder.flush()
    live_stack.events.extend(s.event for s in abroad)

    def outside() -> int:
        found = browser.driver.find_elements(By.CSS_SELECTOR, f"#{ids.MAP_COVERAGE} .coverage-outside")
        return int_attribute(found[0], "data-count") if found else 0

    browser.wait(lambda d: outside() >= outages.ABROAD_ORDERS, 90, "the stalled parcels abroad named under the map")
    national = live_stack.web.gateway.warroom.get("kpis", "national") or {}
    assert national["at_risk"] + national["late"] + national["stalled"] >= outside()
    assert f"{outside():,}" in _text(live_stack, ids.MAP_COVERAGE)
    _ = browser.driver.find_element(By.ID, ids.MAP_COVERAGE).location_once_scrolled_into_view  # reading it scrolls
    browser.screenshot(artifacts_dir / "04b-outside-the-map.png")


HEX_PATH = (
    "var g = document.getElementById('map-graph').querySelector('.js-plotly-plot');"
    "var layers = g.querySelectorAll('.choroplethlayer .trace');"
    "var paths = layers.length > arguments[0] ? layers[arguments[0]].querySelectorAll('path') : [];"
    "for (var k = 0; k < paths.length; k++) { var d = paths[k].__data__;"
    "  if (d && d.loc === arguments[1]) { return paths[k]; } } return null;"
)


def _busiest_free_hexagon(stack: LiveStack) -> str:
    """The national hexagon in China with most SKUs and no incident marker on or next to it
    (a marker takes the click)."""
    gateway = stack.web.gateway.warroom
    cells = live.cells_frame({"items": {str(i.get("cell")): i for i in gateway.items("heatmap")}}, 3)
    incidents = live.incidents({"items": {str(n): i for n, i in enumerate(gateway.items("incident"))}}, None)
    marked = {
        near
        for i in incidents
        if i.lat is not None and i.lon is not None
        for near in h3.grid_disk(h3.latlng_to_cell(i.lat, i.lon, 3), 1)
    }
    lats, lons = zip(*(h3.cell_to_latlng(c) for c in cells["cell"]), strict=True)
    in_china = [code is not None for code in province_lookup(RegionIndex.load())(lons, lats)]
    free = cells[
        [
            c not in marked and inside and n > 0
            for c, inside, n in zip(cells["cell"], in_china, cells["skus"], strict=True)
        ]
    ]
    assert not free.empty, "no hexagon without an incident marker"
    return str(free.sort_values("skus", ascending=False)["cell"].iloc[0])


def test_national_hexagon_lists_its_orders_under_its_place_name(live_stack: LiveStack, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    browser.wait(lambda d: browser.script(HEX_PATHS, map_figures.TRACE_HEXES) >= MIN_HEXES, 60, "hexagons on the map")
    cell = _busiest_free_hexagon(live_stack)
    path = browser.wait(lambda d: browser.script(HEX_PATH, map_figures.TRACE_HEXES, cell), 20, f"the hexagon {cell}")
    ActionChains(browser.driver).move_to_element(path).perform()
    hover = browser.wait(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#map-graph .hoverlayer .hovertext"), 10, "the hexagon's tooltip"
    )[0].text
    # The tooltip's title is the hexagon's province, not its H3 id.
    places = [a.name("zh-CN") for a in load_basemap().province_areas.values()]
    place = next((p for p in sorted(places, key=len, reverse=True) if hover.startswith(p)), None)
    assert cell not in hover and place is not None, hover
    ActionChains(browser.driver).move_to_element(path).click().perform()
    links = browser.wait(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.MAP_CELL_ORDERS} .order-link"),
        20,
        "the hexagon's orders listed",
    )
    fed = {e.order_id for e in live_stack.events}
    assert links and all(link.text in fed for link in links)
    heading = browser.driver.find_element(By.CSS_SELECTOR, f"#{ids.MAP_CELL_ORDERS} h3").text
    assert cell not in heading and place in heading
    # ... without zooming in: the view is still national.
    assert _text(live_stack, ids.MAP_BREADCRUMB) == both("map.national")[0]
    assert not browser.driver.find_element(By.ID, ids.MAP_BACK).is_displayed()
    browser.screenshot(artifacts_dir / "04c-hexagon-orders.png")


ROW_FITS = (
    "var out = []; document.querySelectorAll('.incident-row').forEach(function (row) {"
    "  ['.incident-count', '.incident-owner', '.incident-trend'].forEach(function (sel) {"
    "    var el = row.querySelector(sel);"
    "    if (el && el.scrollWidth > el.clientWidth + 1) { out.push(sel + ' ' + el.textContent); } });"
    "  if (row.scrollWidth > row.clientWidth + 1) { out.push('row ' + row.textContent); } });"
    "return out;"
)


def test_incident_rows_fit_at_1600_px(live_stack: LiveStack, outages_fired: list[Outage], artifacts_dir: Path) -> None:
    """Counts and owners are shown whole (not "27" for 273, "si" for the owner); trends are lines."""
    browser = live_stack.browser
    size = browser.driver.get_window_size()
    browser.driver.set_window_size(1600, size["height"])
    try:
        acked = outages_fired[0]
        selector = f".incident-row[id*='{acked.incident['incident_id']}']"
        browser.wait(
            lambda d: (
                d.find_elements(By.CSS_SELECTOR, selector)
                and d.find_element(By.CSS_SELECTOR, f"{selector} .incident-owner").text == "manager"
            ),
            20,
            "the acked incident's owner",
        )
        assert browser.script(ROW_FITS) == []
        gateway = live_stack.web.gateway.warroom

        def count_shown() -> bool:
            orders = ((gateway.get("incident", acked.incident["incident_id"]) or {}).get("counts") or {}).get("orders")
            return browser.driver.find_element(By.CSS_SELECTOR, f"{selector} .incident-count").text == f"{orders:,}"

        browser.wait(lambda d: count_shown(), 10, "the incident's whole order count")
        for spark in browser.driver.find_elements(By.CSS_SELECTOR, ".incident-row .spark-text"):
            assert set(spark.text) != {"█"}, spark.text
        fills = browser.script(
            "return Array.from(document.querySelectorAll('.kpi-spark .js-plotly-plot'))"
            ".map(function (g) { return g._fullData ? g._fullData[0].fill : 'none'; });"
        )
        assert fills and set(fills) <= {"none", None}
        table = browser.driver.find_element(By.ID, ids.INCIDENT_TABLE)
        _ = table.location_once_scrolled_into_view  # reading it scrolls
        browser.screenshot(artifacts_dir / "04d-incidents-1600px.png")
    finally:
        browser.driver.set_window_size(size["width"], size["height"])


def test_order_lookup_shows_timeline_and_route(
    live_stack: LiveStack, outages_fired: list[Outage], artifacts_dir: Path
) -> None:
    browser = live_stack.browser
    if not browser.driver.find_elements(By.CSS_SELECTOR, ".incident-row.selected"):
        browser.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".incident-row"), 10, "the incident")[0].click()
    link = browser.wait(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.INCIDENT_DETAIL} .order-link"),
        10,
        "an order of the selected incident",
    )
    order_id = link[0].text
    link[0].click()
    browser.wait(lambda d: order_id in _text(live_stack, ids.ORDER_SUMMARY), 15, "the order's summary")
    browser.wait(lambda d: browser.script(TRACES, ids.ORDER_TIMELINE) >= 2, 15, "the order's timeline")
    lanes = browser.script(
        "return document.getElementById(arguments[0]).querySelector('.js-plotly-plot')._fullLayout.yaxis._categories",
        ids.ORDER_TIMELINE,
    )
    assert sorted(lanes) == sorted({e.sku for e in live_stack.events if e.order_id == order_id})
    browser.wait(lambda d: browser.script(VISIBLE, map_figures.TRACE_ROUTE), 10, "the route on the map")
    browser.screenshot(artifacts_dir / "05-order-lookup.png")


def test_language_switch_changes_labels_and_is_remembered(live_stack: LiveStack, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    zh, en = both("kpi.skus_in_flight")
    browser.wait(lambda d: zh in d.find_element(By.ID, ids.KPI_STRIP).text, 10, "Chinese labels")
    browser.driver.find_element(By.CSS_SELECTOR, f"#{ids.LANG_SWITCH} input[value='en']").click()
    browser.wait(lambda d: en in d.find_element(By.ID, ids.KPI_STRIP).text, 10, "English labels")
    assert both("map.title")[1] in browser.driver.find_element(By.CSS_SELECTOR, ".panel-map").text
    # Figures are rebuilt on the server in the new language (the map's colour bar, the charts).
    browser.wait(
        lambda d: (
            browser.script(
                "return document.getElementById('map-graph').querySelector('.js-plotly-plot')"
                "._fullData[arguments[0]].colorbar.title.text",
                map_figures.TRACE_HEXES,
            )
            == both("map.delay_rate")[1]
        ),
        20,
        "the map in English",
    )
    # Data-driven words follow the language too: incident rows and alert titles in English.
    browser.wait(
        lambda d: (
            both("incident.kind.delay")[1] in _text(live_stack, ids.INCIDENT_TABLE)
            and "orders" in _text(live_stack, ids.ALERT_LIST)
        ),
        20,
        "incidents and alerts in English",
    )
    assert "kind=" not in _text(live_stack, ids.ALERT_LIST) and "=" not in _text(live_stack, ids.INCIDENT_TABLE)
    browser.screenshot(artifacts_dir / "06-english.png")
    browser.driver.refresh()
    browser.wait(
        lambda d: d.find_elements(By.ID, ids.KPI_STRIP) and en in d.find_element(By.ID, ids.KPI_STRIP).text,
        20,
        "English remembered after a reload",
    )


def test_war_room_is_for_signed_in_staff_only(live_stack: LiveStack) -> None:
    with httpx.Client(base_url=live_stack.web.base_url, timeout=10) as anonymous:
        page = anonymous.get("/warroom/")
        assert page.status_code == 200 and 'id="login"' in page.text and "_dash-config" not in page.text
        layout = anonymous.get("/warroom/_dash-layout")
        assert layout.status_code == 401 and layout.json()["error"] == "unauthenticated"
        update = anonymous.post("/warroom/_dash-update-component", json={})
        assert update.status_code == 401
        assert (
            anonymous.post("/api/v1/login", json={"username": "viewer", "password": PASSWORDS["viewer"]}).status_code
            == 200
        )
        assert anonymous.get("/warroom/_dash-layout").status_code == 200


def test_lasso_draws_a_disruption_zone_that_is_saved_and_listed(live_stack: LiveStack, artifacts_dir: Path) -> None:
    browser = live_stack.browser
    # The lasso draws on the map, not on the blank placeholder shown until the map's first
    # render (the page was just loaded, or reloaded by the language test).
    browser.wait(lambda d: browser.script(HEX_PATHS, map_figures.TRACE_HEXES) > 0, 60, "the map drawn")
    browser.driver.find_element(By.ID, ids.MAP_DRAW).click()
    browser.wait(
        lambda d: (
            browser.script(
                "return document.getElementById('map-graph').querySelector('.js-plotly-plot')._fullLayout.dragmode"
            )
            == "lasso"
        ),
        10,
        "the lasso armed",
    )
    plot = browser.driver.find_element(By.CSS_SELECTOR, "#map-graph .main-svg")
    chain = ActionChains(browser.driver).move_to_element_with_offset(plot, -60, -40).click_and_hold()
    for dx, dy in ((60, -40), (60, 40), (0, 80), (-60, 40), (-60, -40), (-60, 0)):
        chain = chain.move_by_offset(dx, dy)
    chain.release().perform()
    browser.wait(lambda d: "✓" in _text(live_stack, ids.ZONE_DRAFT_INFO), 10, "a zone draft from the lasso")
    browser.driver.find_element(By.ID, ids.ZONE_NAME).send_keys("Typhoon drill")
    browser.driver.find_element(By.ID, ids.ZONE_SAVE).click()
    browser.wait(lambda d: "Typhoon drill" in _text(live_stack, ids.ZONE_LIST), 15, "the saved zone in the list")
    browser.wait(lambda d: browser.script(VISIBLE, map_figures.TRACE_ZONES), 10, "the zone on the map")
    # The worker raises the zone's incident, titled by the zone's name ...
    browser.wait(lambda d: "Typhoon drill" in _text(live_stack, ids.INCIDENT_TABLE), 90, "the zone's incident")
    browser.screenshot(artifacts_dir / "07-disruption-zone.png")

    # ... which it keeps once the zone is withdrawn and the incident resolved.
    def withdraw_button() -> list[WebElement]:
        cards = browser.driver.find_elements(By.CSS_SELECTOR, ".zone-card")
        return [c.find_element(By.CSS_SELECTOR, ".btn-resolve") for c in cards if "Typhoon drill" in c.text]

    browser.click_found(withdraw_button, "the zone's withdraw button")
    browser.wait(lambda d: "Typhoon drill" not in _text(live_stack, ids.ZONE_LIST), 20, "the zone withdrawn")
    resolved = (
        "var name = arguments[0]; return Array.from(document.querySelectorAll('.incident-row.resolved'))"
        ".some(function (row) { return row.innerText.indexOf(name) >= 0; });"
    )
    browser.wait(lambda d: browser.script(resolved, "Typhoon drill"), 60, "the withdrawn zone's incident, by name")
    browser.screenshot(artifacts_dir / "07b-zone-withdrawn.png")


def test_acked_and_silenced_alerts_do_not_escalate(live_stack: LiveStack, outages_fired: list[Outage]) -> None:
    """Last in the file: the escalation delay runs out while the other tests run. Once the
    agent has saved its engine after both alerts' next step was due, it has decided it."""
    acked, muted = outages_fired
    due = max(o.paged_by for o in outages_fired) + ESCALATE_AFTER_S + 2  # + two ticks of the agent

    def decided() -> bool:
        live_stack.check_worker()
        return (last_agent_save(live_stack.settings) or 0) > due

    wait_until(
        decided,
        ESCALATE_AFTER_S + 120,
        interval=1.0,
        what="the agent saving its engine after the escalation was due",
    )
    assert live_stack.pages("bob_pager", acked.alert_id) == [], "the acked alert escalated"
    assert live_stack.pages("bob_pager", muted.alert_id) == [], "the silenced alert escalated"
    assert (live_stack.alert(acked.alert_id)["status"], live_stack.alert(muted.alert_id)["status"]) == (
        "acked",
        "silenced",
    )
    assert live_stack.alert(acked.alert_id).get("escalation_step") == 0
    assert live_stack.alert(muted.alert_id).get("escalation_step") == 0
