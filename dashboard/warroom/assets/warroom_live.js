/*
 * The war-room's live feed: one WebSocket to the gateway's /ws/warroom, in the browser.
 *
 * Protocol (dashboard/gateway/ws_warroom.py): send {"type":"subscribe", epoch?, last_seq?};
 * receive "subscribed" (user, role), a "snapshot" of every channel, then "update" messages
 * ({channel, key, data|null}) with a growing seq. Unsent updates to one item are merged by
 * the gateway, so seq gaps are normal; a reconnect resumes from (epoch, last seq) and the
 * gateway answers with the missed updates or a fresh snapshot.
 *
 * The merged state is handed to Dash with dash_clientside.set_props, one dcc.Store per
 * channel ("live-<channel>": {seq, items}), at most every FLUSH_MS and only for channels
 * that changed. Clientside callbacks draw them (assets/warroom_views.js: KPIs, hexagon
 * colours, coverage, badge), so a heatmap or KPI update makes no request to the server; the
 * server draws on a user's action, new cells, and incident, alert or zone changes.
 * Reconnects back off exponentially with full jitter (0.5 s .. 30 s).
 *
 * Time travel (dashboard/warroom/panels/time_travel.py): while a past minute is shown the
 * feed keeps merging updates but publishes none (the server fills the stores as of that
 * minute); "live" publishes every channel again.
 */
(function () {
    "use strict";

    var FLUSH_MS = 1000;
    var BACKOFF_MIN_MS = 500;
    var BACKOFF_MAX_MS = 30000;
    var PING_MS = 20000;
    // Keep in step with dashboard/warroom/live.py CHANNELS.
    var CHANNELS = ["heatmap", "kpis", "incident", "alert", "silence", "disruption", "warroom"];

    var state = {epoch: null, seq: null, channels: {}};
    var dirty = {};
    var status = {state: "connecting", user: null, role: null, seq: null, at: null, code: null};
    var statusDirty = true;
    var seqDirty = false;
    var socket = null;
    var attempt = 0;
    var started = false;
    var flushTimer = null;
    var lastFlush = 0;
    var paused = false;

    CHANNELS.forEach(function (name) { state.channels[name] = {}; dirty[name] = true; });

    function url() {
        var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
        return scheme + "//" + window.location.host + "/ws/warroom";
    }

    function setStatus(fields) {
        Object.keys(fields).forEach(function (k) { status[k] = fields[k]; });
        status.at = new Date().toISOString();
        statusDirty = true;
        scheduleFlush();
    }

    /* Flush now if the last flush is FLUSH_MS old, else when it will be. */
    function scheduleFlush() {
        if (flushTimer !== null || !started) { return; }
        var wait = Math.max(0, lastFlush + FLUSH_MS - Date.now());
        flushTimer = window.setTimeout(flush, wait);
    }

    function apply(message) {
        if (message.type === "subscribed") {
            setStatus({state: "open", user: message.user, role: message.role, seq: message.seq, code: null});
            seqDirty = true;
            attempt = 0;
        } else if (message.type === "snapshot") {
            state.epoch = message.epoch;
            state.seq = message.seq;
            var channels = message.channels || {};
            Object.keys(state.channels).concat(Object.keys(channels)).forEach(function (name) {
                state.channels[name] = channels[name] || {};
                dirty[name] = true;
            });
        } else if (message.type === "update") {
            if (message.epoch !== state.epoch) { state.epoch = message.epoch; }
            state.seq = message.seq;
            var items = state.channels[message.channel] || (state.channels[message.channel] = {});
            if (message.data === null || message.data === undefined) {
                delete items[message.key];
            } else {
                items[message.key] = message.data;
            }
            dirty[message.channel] = true;
        } else if (message.type === "error") {
            console.warn("warroom feed:", message.error, message.detail);
        }
        // The badge shows the last seq: it is published with the channel stores (at most once
        // per FLUSH_MS) in a store of its own, so the panels reading the status (the role) are
        // not re-rendered every second.
        if (typeof message.seq === "number" && message.seq !== status.seq) {
            status.seq = message.seq;
            seqDirty = true;
        }
        scheduleFlush();
    }

    function connect() {
        setStatus({state: attempt === 0 ? "connecting" : "closed"});
        socket = new WebSocket(url());
        socket.onopen = function () {
            var hello = {type: "subscribe"};
            if (state.epoch !== null && state.seq !== null) { hello.epoch = state.epoch; hello.last_seq = state.seq; }
            socket.send(JSON.stringify(hello));
        };
        socket.onmessage = function (event) {
            var message;
            try { message = JSON.parse(event.data); } catch (err) { return; }
            apply(message);
        };
        socket.onclose = function (event) {
            socket = null;
            // 1008/4401-style refusals and a failed handshake (1006 before "open") mean
            // "sign in again" only when the page itself is refused; keep retrying either way.
            setStatus({state: "closed", code: event.code});
            var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt));
            attempt += 1;
            window.setTimeout(connect, Math.random() * ceiling);
        };
    }

    // What the callbacks read of each heatmap cell (dashboard/warroom/live.py, warroom_views.js);
    // dropping the rest keeps the store, sent with a user's map actions, small.
    var HEATMAP_FIELDS = ["cell", "res", "region", "skus", "orders", "at_risk", "late", "stalled"];

    function published(name) {
        var items = state.channels[name] || {};
        if (name !== "heatmap") { return items; }
        var slim = {};
        Object.keys(items).forEach(function (key) {
            var item = items[key], out = {};
            HEATMAP_FIELDS.forEach(function (f) { if (item[f] !== undefined && item[f] !== null) { out[f] = item[f]; } });
            slim[key] = out;
        });
        return slim;
    }

    function flush() {
        flushTimer = null;
        lastFlush = Date.now();
        var setProps = window.dash_clientside && window.dash_clientside.set_props;
        if (!setProps) { return; }
        // Only the channels with a store in the layout; others are kept but not published.
        CHANNELS.forEach(function (name) {
            if (!dirty[name] || paused) { return; }
            setProps("live-" + name, {data: {seq: state.seq, items: published(name)}});
            dirty[name] = false;
        });
        if (statusDirty) {
            setProps("shell-live-status", {data: Object.assign({}, status)});
            statusDirty = false;
        }
        if (seqDirty) {
            setProps("shell-live-seq", {data: status.seq});
            seqDirty = false;
        }
    }

    function ping() {
        if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify({type: "ping"})); }
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.warroom_live = {
        /* Every translated span's text in the chosen language (the table comes from i18n.py). */
        relabel: function (lang, labels) {
            var zh = !lang || String(lang).toLowerCase().indexOf("en") !== 0;
            return window.dash_clientside.callback_context.outputs_list.map(function (out) {
                var pair = (labels || {})[out.id.key];
                return pair ? pair[zh ? 0 : 1] : out.id.key;
            });
        },

        /* Time travel: pause publishing for a past minute ({at: minute}), resume for live
           ({at: null}, every channel republished at once). Returns what the server may show. */
        travel: function (mode) {
            var at = mode && typeof mode.at === "number" ? mode.at : null;
            if (at === null && paused) {
                paused = false;
                CHANNELS.forEach(function (name) { dirty[name] = true; });
                if (flushTimer !== null) { window.clearTimeout(flushTimer); flushTimer = null; }
                flush();
            } else if (at !== null) {
                paused = true;
            }
            return {at: at, n: Date.now()};
        },

        /* The time slider handle's accessible name and value text (language, local time). */
        labelSlider: function (value, lang, labels, tz) {
            var zh = !lang || String(lang).toLowerCase().indexOf("en") !== 0;
            var pair = (labels || {})["travel.slider"];
            var thumb = document.querySelector("#travel-slider [role=slider]");
            if (!thumb && !(arguments[4] > 10)) {  // not drawn yet: try again shortly
                var tries = (arguments[4] || 0) + 1, self = this, args = [value, lang, labels, tz, tries];
                window.setTimeout(function () { window.dash_clientside.warroom_live.labelSlider.apply(self, args); }, 300);
            }
            if (thumb) {
                if (pair) { thumb.setAttribute("aria-label", pair[zh ? 0 : 1]); }
                if (typeof value === "number") {
                    var when = new Date(value * 60000);
                    thumb.setAttribute("aria-valuetext", when.toLocaleString(zh ? "zh-CN" : "en-GB",
                        {timeZone: tz || "UTC", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"}));
                }
            }
            return window.dash_clientside.no_update;
        },

        /* Called once by a clientside callback when the layout is on the page. */
        start: function () {
            if (!started) {
                started = true;
                connect();
                window.setInterval(ping, PING_MS);
                scheduleFlush();
            }
            return window.dash_clientside.no_update;
        }
    };
})();
