/*
 * Staff actions and look-ups, sent by the browser to the gateway's API with the staff
 * session cookie (same origin), so the gateway authorises each one by the user's role and
 * records who did it. Used as Dash clientside callbacks (they may return Promises); each
 * returns a small result object {ok, status, ...} that a server callback turns into text.
 */
(function () {
    "use strict";

    function call(method, path, body) {
        var init = {method: method, credentials: "same-origin", headers: {"Accept": "application/json"}};
        // Session actions take JSON only (the gateway refuses form posts), even without fields.
        if (body === undefined && method === "POST") { body = {}; }
        if (body !== undefined) {
            init.headers["Content-Type"] = "application/json";
            init.body = JSON.stringify(body);
        }
        return fetch(path, init).then(function (response) {
            return response.text().then(function (text) {
                var data = null;
                try { data = text ? JSON.parse(text) : null; } catch (err) { data = {detail: text}; }
                return {ok: response.ok, status: response.status, body: data, at: new Date().toISOString()};
            });
        }).catch(function (err) {
            return {ok: false, status: 0, body: {error: "network", detail: String(err)}, at: new Date().toISOString()};
        });
    }

    /* The pattern-matching id of the button that fired, if it was really clicked. */
    function clicked() {
        var ctx = window.dash_clientside.callback_context;
        if (!ctx || !ctx.triggered || !ctx.triggered.length) { return null; }
        var fired = ctx.triggered[0];
        if (!fired.value) { return null; }  // buttons re-rendered by a live update
        var prop = fired.prop_id;
        return JSON.parse(prop.slice(0, prop.lastIndexOf(".")));
    }

    function seg(text) { return encodeURIComponent(String(text)); }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.warroom_actions = {
        alert: function () {
            var id = clicked();
            if (!id) { return window.dash_clientside.no_update; }
            var request;
            if (id.action === "silence") {
                request = call("POST", "/api/v1/silences", {
                    matchers: JSON.parse(id.matchers), duration_s: 3600,
                    comment: "silenced from the war-room (alert " + id.alert + ")"
                });
            } else {
                request = call("POST", "/api/v1/alerts/" + seg(id.alert) + "/" + seg(id.action));
            }
            return request.then(function (result) {
                return Object.assign(result, {action: id.action, alert: id.alert});
            });
        },

        order: function (request) {
            var wanted = ((request && request.order_id) || "").trim();
            if (!wanted) { return window.dash_clientside.no_update; }
            return call("GET", "/api/v1/orders/" + seg(wanted)).then(function (result) {
                return Object.assign(result, {order_id: wanted});
            });
        },

        saveZone: function (clicks, draft, name, reason, validFrom, validUntil) {
            if (!clicks) { return window.dash_clientside.no_update; }
            if (!draft || !draft.geometry) {
                return {ok: false, status: 0, body: {error: "no_draft"}, at: new Date().toISOString()};
            }
            var starts = new Date(validFrom), ends = new Date(validUntil);
            if (isNaN(starts.getTime()) || isNaN(ends.getTime())) {
                return {ok: false, status: 0, body: {error: "bad_time", detail: "valid from / until"}, at: new Date().toISOString()};
            }
            return call("POST", "/api/v1/disruptions", {
                name: (name || "").trim() || reason, reason: reason, geometry: draft.geometry,
                starts_at: starts.toISOString(), ends_at: ends.toISOString()
            }).then(function (result) { return Object.assign(result, {action: "create"}); });
        },

        deleteZone: function () {
            var id = clicked();
            if (!id) { return window.dash_clientside.no_update; }
            return call("DELETE", "/api/v1/disruptions/" + seg(id.zone)).then(function (result) {
                return Object.assign(result, {action: "delete", zone: id.zone});
            });
        },

        /* Local wall-clock defaults for the validity window: now and six hours on. */
        defaultWindow: function () {
            function local(date) {
                var pad = function (n) { return String(n).padStart(2, "0"); };
                return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
                    "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
            }
            var now = new Date();
            return [local(now), local(new Date(now.getTime() + 6 * 3600 * 1000))];
        }
    };
})();
