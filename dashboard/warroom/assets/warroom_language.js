/* The war-room's language: `?lang=` in the address wins (and is remembered), then the choice
   this browser remembers (the local-storage store), then the language the server negotiated
   from Accept-Language (<html lang>, see app.py). The page's lang attribute and title follow. */
(function () {
    "use strict";
    var norm = function (l) {
        if (!l) { return null; }
        var s = String(l).toLowerCase();
        return s.indexOf("en") === 0 ? "en" : (s.indexOf("zh") === 0 ? "zh-CN" : null);
    };
    var initial = true;

    function apply(lang, labels) {
        document.documentElement.lang = lang;
        var title = (labels || {}).title;
        if (title) { document.title = title[lang === "en" ? 1 : 0]; }
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.warroom_language = {
        sync: function (chosen, storedAt, stored, labels) {
            var noUpdate = window.dash_clientside.no_update;
            var ctx = window.dash_clientside.callback_context;
            var fired = ctx.triggered && ctx.triggered.length ? ctx.triggered[0].prop_id : "";
            var lang;
            if (initial) {
                initial = false;
                var asked = norm(new URLSearchParams(window.location.search).get("lang"));
                lang = asked || norm(stored) || norm(document.documentElement.lang) || "zh-CN";
            } else if (fired.indexOf("shell-lang-switch.") === 0 && chosen) {
                lang = norm(chosen) || "zh-CN";
            } else {
                lang = norm(stored) || "zh-CN";
            }
            apply(lang, labels);
            return [lang !== stored ? lang : noUpdate, lang !== chosen ? lang : noUpdate];
        }
    };
})();
