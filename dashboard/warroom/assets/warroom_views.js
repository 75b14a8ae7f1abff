/*
 * The war-room's live views, drawn in the browser: a live update never goes to the server.
 *
 * assets/warroom_live.js puts each channel of /ws/warroom into its dcc.Store ("live-<channel>":
 * {seq, items}); the clientside callbacks here (registered in panels/kpis.py, map.py, shell.py,
 * history_charts.py) turn those stores into the KPI strip, the map's colours (hexagons or
 * provinces), the coverage note under the map, the live badge and the history charts' anchor
 * minute. Time travel fills the same stores from the server, so it is drawn the same way.
 *
 * The server still draws the first map and every change of view, mode, language, layer or
 * selection (map_figures.py and charts.py; theme.py: the one place for styling), and the map's
 * hexagon trace when the set of cells changes (a cell's place name and outline come from the
 * boundary files; the server then also sends each cell's province for the province view's roll-up);
 * a live update here only replaces data arrays (z, customdata, y) with a dash_clientside.Patch.
 * Incidents, alerts and zones are titled and placed on the server when those channels change.
 *
 * The pure parts are `window.warroomViews` (and module.exports under node, for the tests).
 */
(function (root) {
    "use strict";

    // Keep in step with dashboard/warroom/live.py (TIERS, OPEN_ALERT_STATUSES).
    var TIERS = ["P1", "P2", "P3", "P4"];
    var OPEN_ALERT = {pending: 1, firing: 1, acked: 1, silenced: 1, inhibited: 1};

    function items(store) {
        var found = store && store.items;
        return found && typeof found === "object" ? found : {};
    }

    function count(v) {
        return typeof v === "number" && isFinite(v) ? Math.trunc(v) : 0;
    }

    function isZh(lang) { return !lang || String(lang).toLowerCase().indexOf("en") !== 0; }

    /* Python's str.format for the label table: "{n}", "{n:,}" (thousands), "{minutes}". */
    function format(template, values) {
        return String(template).replace(/\{(\w+)(:,)?\}/g, function (whole, name, comma) {
            if (!(name in values)) { return whole; }
            var v = values[name];
            return comma && typeof v === "number" ? v.toLocaleString("en-US") : String(v);
        });
    }

    function label(table, lang, key, values) {
        var pair = (table || {})[key];
        var text = pair ? pair[isZh(lang) ? 0 : 1] : key;
        return values ? format(text, values) : text;
    }

    // KPIs ------------------------------------------------------------------------------

    function worstTier(tiers) {
        var known = tiers.filter(function (t) { return TIERS.indexOf(t) >= 0; }).sort();
        return known.length ? known[0] : "P4";
    }

    /* Open incidents by tier: an incident's own tier, else the worst of the alerts covering it. */
    function incidentsByTier(incidentStore, alertStore) {
        var covering = {};
        var alerts = items(alertStore);
        Object.keys(alerts).forEach(function (k) {
            var a = alerts[k];
            if (!a || typeof a !== "object") { return; }
            (a.incident_ids || []).forEach(function (id) { (covering[String(id)] = covering[String(id)] || []).push(String(a.tier)); });
        });
        var out = {};
        var incidents = items(incidentStore);
        Object.keys(incidents).forEach(function (key) {
            var r = incidents[key];
            if (!r || typeof r !== "object" || (r.state || "open") === "resolved") { return; }
            var tier = r.tier || worstTier(covering[String(r.incident_id || key)] || []);
            out[tier] = (out[tier] || 0) + 1;
        });
        return out;
    }

    function alertsByTier(alertStore) {
        var out = {};
        var alerts = items(alertStore);
        Object.keys(alerts).forEach(function (k) {
            var a = alerts[k];
            if (a && typeof a === "object" && OPEN_ALERT[a.status || "firing"]) {
                var tier = String(a.tier || "P4");
                out[tier] = (out[tier] || 0) + 1;
            }
        });
        return out;
    }

    function sum(byTier) { return Object.keys(byTier).reduce(function (s, k) { return s + byTier[k]; }, 0); }

    /* The KPI strip's numbers (null where no source reports one): the newest "kpis" item
       (by its "at"); SKUs in flight from the core worker's partition summaries when no kpis
       item says; open incidents and alerts counted from their channels. */
    function kpis(kpiStore, incidentStore, alertStore, partitionStore) {
        var latest = {};
        var found = items(kpiStore);
        Object.keys(found).forEach(function (k) {
            var item = found[k];
            if (item && typeof item === "object" && String(item.at || "") >= String(latest.at || "")) { latest = item; }
        });
        var inflight = null, watermark = null;
        var parts = items(partitionStore);
        Object.keys(parts).forEach(function (k) {
            var p = parts[k];
            if (p && typeof p === "object" && p.inflight_by_status && typeof p.inflight_by_status === "object") {
                inflight = (inflight || 0) + Object.keys(p.inflight_by_status).reduce(function (s, st) {
                    return s + count(p.inflight_by_status[st]);
                }, 0);
                if (typeof p.watermark === "string" && (watermark === null || p.watermark > watermark)) { watermark = p.watermark; }
            }
        });
        var has = function (k) { return k in latest; };
        var incidents = incidentsByTier(incidentStore, alertStore);
        var alerts = alertsByTier(alertStore);
        return {
            skus_in_flight: latest.skus_in_flight !== undefined && latest.skus_in_flight !== null ? count(latest.skus_in_flight) : inflight,
            orders_in_flight: has("orders_in_flight") ? count(latest.orders_in_flight) : null,
            on_time_rate: typeof latest.on_time_rate === "number" ? latest.on_time_rate : null,
            at_risk: has("at_risk") ? count(latest.at_risk) : null,
            late: has("late") ? count(latest.late) : null,
            stalled: has("stalled") ? count(latest.stalled) : null,
            eta_slips: has("eta_slips") ? count(latest.eta_slips) : null,
            open_incidents: sum(incidents),
            open_alerts: sum(alerts),
            incidents_by_tier: incidents,
            alerts_by_tier: alerts,
            at: latest.at || watermark || null
        };
    }

    // Trends: {t: [iso...], v: {kpi: [number|null...]}}, seeded from history by the server ----

    /* The trend with `sample` at `at` (ms) added, at most `bounds.max_samples` long; null
       when nothing changes. Within `bounds.min_step_s` of the last point the last point is
       refreshed instead (a busy feed must not turn the trend into a one-minute window). */
    function appended(trend, at, sample, bounds) {
        var maxSamples = bounds.max_samples, minStepMs = bounds.min_step_s * 1000;
        var times = trend && trend.t ? trend.t.slice() : [];
        var values = {};
        Object.keys((trend && trend.v) || {}).forEach(function (k) { values[k] = trend.v[k].slice(); });
        var keys = Object.keys(sample);
        if (times.length && at - Date.parse(times[times.length - 1]) < minStepMs) {
            var changed = keys.some(function (k) { var s = values[k]; return (s ? s[s.length - 1] : null) !== sample[k]; });
            if (!changed) { return null; }
            keys.forEach(function (k) {
                if (!values[k]) { values[k] = times.map(function () { return null; }); }
                values[k][values[k].length - 1] = sample[k];
            });
            return {t: times, v: values};
        }
        Object.keys(values).concat(keys).forEach(function (k) {
            if (!values[k]) { values[k] = times.map(function () { return null; }); }
            if (values[k].length === times.length) { values[k].push(k in sample ? sample[k] : null); }
        });
        times.push(new Date(at).toISOString());
        if (times.length > maxSamples) {
            times = times.slice(-maxSamples);
            Object.keys(values).forEach(function (k) { values[k] = values[k].slice(-maxSamples); });
        }
        return {t: times, v: values};
    }

    /* The series from its first known value on. */
    function recent(trend, key) {
        var values = ((trend && trend.v) || {})[key] || [];
        var first = values.findIndex(function (v) { return v !== null && v !== undefined; });
        return first < 0 ? [] : values.slice(first);
    }

    /* Newest value minus the value `minutes` earlier (the sample at or before then). */
    function changeSince(trend, key, minutes) {
        if (!trend || !trend.t || !trend.t.length) { return null; }
        var values = (trend.v || {})[key] || [];
        var newest = values[values.length - 1];
        if (values.length !== trend.t.length || newest === null || newest === undefined) { return null; }
        var cutoff = Date.parse(trend.t[trend.t.length - 1]) - minutes * 60000;
        var earlier = null;
        trend.t.forEach(function (t, i) {
            if (Date.parse(t) <= cutoff && values[i] !== null && values[i] !== undefined) { earlier = values[i]; }
        });
        return earlier === null ? null : newest - earlier;
    }

    function formatValue(key, value) {
        if (value === null || value === undefined) { return "–"; }
        if (key === "on_time_rate") { return (value * 100).toFixed(1) + "%"; }
        return Math.trunc(value).toLocaleString("en-US");
    }

    /* Text and CSS class of a KPI's change (red when it moved the bad way). */
    function formatDelta(key, change, worseUp, minutes, lang, table) {
        if (change === null || change === undefined || change === 0) { return ["", "kpi-delta"]; }
        var arrow = change > 0 ? "▲" : "▼";
        var amount = key === "on_time_rate" ? (Math.abs(change) * 100).toFixed(1) + " pt"
            : Math.abs(Math.trunc(change)).toLocaleString("en-US");
        var tone = worseUp === null || worseUp === undefined ? "neutral" : ((change > 0) === worseUp ? "bad" : "good");
        return [arrow + " " + amount + " " + label(table, lang, "kpi.vs_earlier", {minutes: minutes}),
                "kpi-delta kpi-" + tone];
    }

    function tierSpans(byTier) {
        return TIERS.map(function (tier) {
            return {namespace: "dash_html_components", type: "Span",
                    props: {children: tier + " " + (byTier[tier] || 0), className: "tier tier-" + tier.toLowerCase()}};
        });
    }

    // The map ---------------------------------------------------------------------------

    /* FNV-1a of the sorted heatmap keys: changes when a cell appears or goes. */
    function cellsKey(heatmapStore) {
        var keys = Object.keys(items(heatmapStore)).sort();
        var h = 0x811c9dc5;
        for (var i = 0; i < keys.length; i++) {
            var s = keys[i] + "|";
            for (var j = 0; j < s.length; j++) { h ^= s.charCodeAt(j); h = Math.imul(h, 0x01000193) >>> 0; }
        }
        return keys.length + ":" + h.toString(16);
    }

    /* Delay rate = (at_risk + late + stalled) / skus, 0 without SKUs (live.py: _ratio). */
    function delayRate(skus, bad) {
        return skus > 0 ? Math.min(1, Math.max(0, bad / skus)) : 0;
    }

    /* A rate as the province tooltip shows it (map_figures._pct: one decimal, half up). */
    function pct(rate) { return (rate * 100).toFixed(1) + "%"; }

    /* New z and customdata of the hexagon trace (map_figures.hex_values: [skus, at_risk, late,
       stalled, place]) for the cells it shows, or null when one of them is not a heatmap
       item itself (a roll-up to a coarser resolution: the server draws that). */
    function hexValues(trace, heatmapStore) {
        var found = items(heatmapStore);
        var locations = trace.locations || [];
        var z = [], customdata = [];
        for (var i = 0; i < locations.length; i++) {
            var item = found[locations[i]];
            if (!item || typeof item !== "object") { return null; }
            var skus = count(item.skus), risk = count(item.at_risk), late = count(item.late), stalled = count(item.stalled);
            var rate = delayRate(skus, risk + late + stalled);
            var place = (trace.customdata && trace.customdata[i]) ? trace.customdata[i][4] : locations[i];
            z.push(Math.round(rate * 10000) / 10000);
            customdata.push([skus, risk, late, stalled, place]);
        }
        return {z: z, customdata: customdata};
    }

    /* New z and customdata of the province choropleth (map_figures.province_trace: [skus,
       at_risk, late, stalled, rate text], "–" where no cell lies) for the provinces it shows:
       the heatmap items summed by `region.province` (panels/map.py region_cells: each cell
       the roll-up uses -> its province, sent when the set of cells changes), or null before
       that table has come (the server draws it). */
    function provinceValues(trace, heatmapStore, region) {
        var table = (region || {}).province;
        if (!table || typeof table !== "object") { return null; }
        var found = items(heatmapStore);
        var sums = {};
        Object.keys(table).forEach(function (cell) {
            var item = found[cell];
            if (!item || typeof item !== "object") { return; }
            var s = sums[table[cell]] = sums[table[cell]] || [0, 0, 0, 0];
            s[0] += count(item.skus); s[1] += count(item.at_risk); s[2] += count(item.late); s[3] += count(item.stalled);
        });
        var z = [], customdata = [];
        (trace.locations || []).forEach(function (code) {
            var s = sums[code];
            if (!s) { z.push(0); customdata.push([0, 0, 0, 0, "–"]); return; }
            var rate = delayRate(s[0], s[1] + s[2] + s[3]);
            z.push(rate);
            customdata.push([s[0], s[1], s[2], s[3], pct(rate)]);
        });
        return {z: z, customdata: customdata};
    }

    // Coverage note under the map: what the KPIs count that the map cannot show. -----------

    /* At-risk, late and stalled items the KPIs count but the map cannot show: those in
       cells outside the map area and those with no position at all. `region` is the
       server's {cells: cells at the roll-up resolution, outside: those outside the map}. */
    function coverage(heatmapStore, kpiStore, region) {
        var found = items(heatmapStore);
        var outside = {};
        ((region || {}).outside || []).forEach(function (c) { outside[c] = true; });
        var shown = 0, away = 0;
        ((region || {}).cells || []).forEach(function (cell) {
            var item = found[cell];
            if (!item || typeof item !== "object") { return; }
            var bad = count(item.at_risk) + count(item.late) + count(item.stalled);
            shown += bad;
            if (outside[cell]) { away += bad; }
        });
        var k = kpis(kpiStore, null, null, null);
        var counted = (k.at_risk || 0) + (k.late || 0) + (k.stalled || 0);
        return {outside: away, unplaced: Math.max(0, counted - shown)};
    }

    // The live badge -------------------------------------------------------------------------

    function badge(status, lang, seq, table) {
        var state = (status || {}).state || "connecting";
        if (state === "open") {
            var shown = typeof seq === "number" ? seq : (status || {}).seq;
            return ["● " + label(table, lang, "live.open") + " · seq " + shown, "live-badge live-open"];
        }
        if (state === "closed" && [1008, 4401, 4403].indexOf((status || {}).code) >= 0) {
            return [label(table, lang, "live.denied"), "live-badge live-closed"];
        }
        return [label(table, lang, state === "closed" ? "live.closed" : "live.connecting"), "live-badge live-" + state];
    }

    function userText(status, lang, table) {
        var user = (status || {}).user, role = (status || {}).role;
        if (!user) { return ""; }
        return label(table, lang, "user.signed_in_as") + " " + user + " · " + label(table, lang, "role." + role);
    }

    var views = {
        format: format, kpis: kpis, appended: appended, recent: recent, changeSince: changeSince,
        formatValue: formatValue, formatDelta: formatDelta, cellsKey: cellsKey, hexValues: hexValues,
        provinceValues: provinceValues,
        coverage: coverage, badge: badge, userText: userText
    };

    if (typeof module !== "undefined" && module.exports) { module.exports = views; }
    root.warroomViews = views;
    if (typeof root.document === "undefined") { return; }

    // The clientside callbacks -------------------------------------------------------------

    var dc = root.dash_clientside = root.dash_clientside || {};
    dc.warroom_views = {
        /* Inputs: kpis, incident, alert, partitions stores, language; State: trend, spec
           (panels/kpis.py spec()), label table. Outputs: values, deltas, delta classes,
           sparklines (y only), tier breakdowns, the trend. */
        kpis: function (kpiStore, incidentStore, alertStore, partitionStore, lang, trend, spec, table) {
            var cards = spec.cards, minutes = spec.delta_minutes;
            var current = kpis(kpiStore, incidentStore, alertStore, partitionStore);
            var any = [kpiStore, incidentStore, alertStore, partitionStore].some(function (s) {
                return Object.keys(items(s)).length > 0;
            });
            var sample = {};
            cards.forEach(function (s) { sample[s.key] = current[s.key]; });
            var at = current.at ? Date.parse(current.at) : NaN;
            var grown = any ? appended(trend, isNaN(at) ? Date.now() : at, sample, spec) : null;
            var shown = grown || trend;
            var values = [], deltas = [], classes = [], sparks = [];
            cards.forEach(function (s) {
                values.push(formatValue(s.key, current[s.key]));
                var d = formatDelta(s.key, changeSince(shown, s.key, minutes), s.worse_up, minutes, lang, table);
                deltas.push(d[0]);
                classes.push(d[1]);
                sparks.push(new dc.Patch().assign(["data", 0, "y"], recent(shown, s.key)).build());
            });
            return values.concat(deltas, classes, sparks, [tierSpans(current.incidents_by_tier),
                tierSpans(current.alerts_by_tier), grown || dc.no_update]);
        },

        /* The hexagons' (hexagon mode) or provinces' (province mode) colours and counts from
           the heatmap store, same cells; State `region` is the server's region_cells.
           Outputs: the figure (a Patch of data arrays), the cells key (changes when a cell
           appears or goes: the server redraws the hexagons), a redraw mark (set when only
           the server can draw the update: a hexagon roll-up, no province table yet). */
        mapValues: function (heatmapStore, mode, figure, drawnKey, region) {
            var key = cellsKey(heatmapStore);
            var data = (figure && figure.data) || [];
            var index = data.findIndex(function (t) { return t && t.name === "hexes"; });
            if (index < 0) { return [dc.no_update, key === drawnKey ? dc.no_update : key, dc.no_update]; }
            if (key !== drawnKey) { return [dc.no_update, key, dc.no_update]; }
            var values = null;
            if (mode === "hex") {
                values = hexValues(data[index], heatmapStore);
            } else {
                index = data.findIndex(function (t) { return t && t.name === "provinces"; });
                values = index < 0 ? null : provinceValues(data[index], heatmapStore, region);
            }
            if (values === null) { return [dc.no_update, dc.no_update, (heatmapStore && heatmapStore.seq) || Date.now()]; }
            var patch = new dc.Patch().assign(["data", index, "z"], values.z)
                .assign(["data", index, "customdata"], values.customdata);
            return [patch.build(), dc.no_update, dc.no_update];
        },

        coverage: function (heatmapStore, kpiStore, region, lang, table) {
            var found = coverage(heatmapStore, kpiStore, region);
            var lines = [];
            if (found.outside) {
                lines.push({namespace: "dash_html_components", type: "Div", props: {
                    children: label(table, lang, "map.outside_items", {n: found.outside}),
                    className: "coverage-outside", "data-count": String(found.outside)}});
            }
            if (found.unplaced) {
                lines.push({namespace: "dash_html_components", type: "Div", props: {
                    children: label(table, lang, "map.unplaced_items", {n: found.unplaced}),
                    className: "coverage-unplaced", "data-count": String(found.unplaced)}});
            }
            return lines;
        },

        status: function (status, lang, seq, table) {
            var b = badge(status, lang, seq, table);
            return [b[0], b[1], userText(status, lang, table)];
        },

        /* The minute of the live KPIs' time (ISO, UTC): the history charts end there. */
        anchor: function (kpiStore, current) {
            var at = kpis(kpiStore, null, null, null).at;
            var ms = at ? Date.parse(at) : NaN;
            if (isNaN(ms)) { return current === null || current === undefined ? dc.no_update : null; }
            var minute = new Date(Math.floor(ms / 60000) * 60000).toISOString().replace(".000Z", "+00:00");
            return minute === current ? dc.no_update : minute;
        }
    };
})(typeof window !== "undefined" ? window : globalThis);
