/* Customer tracking page: one order, live.
 *
 * Sends the token (from the URL path, never from the page body) in the first WebSocket
 * message, renders the snapshot, then applies deltas in `seq` order. On any disconnect it
 * reconnects with exponential backoff and full jitter (0.5 s doubling, 30 s cap) and resumes
 * from the last seq it applied; the server replays what was missed or sends a new snapshot.
 * The map is inline SVG in Web Mercator world units (256 x 256 at zoom 0), so optional
 * raster tiles line up with it: with tiles, streets, the route and the destination's city;
 * without, prefecture outlines around the parcel; no position, no map. Everything shown
 * comes from the customer projection.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("tracking-config").textContent);
  var W = config.words;
  var M = config.milestones;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var BACKOFF_BASE_S = 0.5;
  var BACKOFF_CAP_S = 30;
  var EARTH_M = 40075016.686;
  var COARSE_DECIMALS = 2;  // dashboard.gateway.projection.COARSE_DECIMALS

  var token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  var state = { order: null, seq: null };
  var attempt = 0;
  var socket = null;
  var retryTimer = null;
  var stopped = false;

  // ---- words ----------------------------------------------------------------------
  function word(key, values) {
    var text = W[key] || key;
    if (values) {
      Object.keys(values).forEach(function (k) { text = text.split("{" + k + "}").join(values[k]); });
    }
    return text;
  }
  function milestoneWord(m) { return W["m_" + m] || W.m_delayed; }
  function reasonWord(r) { return W["r_" + r] || W.r_other; }

  var dateFmt = new Intl.DateTimeFormat(config.lang, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
  var timeFmt = new Intl.DateTimeFormat(config.lang, { hour: "2-digit", minute: "2-digit", hour12: false });
  function parseTime(value) {
    if (value === null || value === undefined || value === "") return null;
    var d = typeof value === "number" ? new Date(value > 1e12 ? value : value * 1000) : new Date(value);
    return isNaN(d.getTime()) ? null : d;
  }
  function formatTime(value) { var d = parseTime(value); return d ? dateFmt.format(d) : ""; }
  // In the order's time zone when the worker gave its offset (the ETA window), else the browser's.
  var zonedFmt = new Intl.DateTimeFormat(config.lang, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "UTC" });
  function formatAt(value, offsetMin) {
    var d = parseTime(value);
    if (!d) return "";
    if (typeof offsetMin !== "number") return dateFmt.format(d);
    return zonedFmt.format(new Date(d.getTime() + offsetMin * 60000));
  }
  function formatRange(range) {
    if (!range) return word("eta_missing");
    var from = parseTime(range.from), to = parseTime(range.to);
    if (from && to && to > from && dateFmt.formatRange) return dateFmt.formatRange(from, to);
    var one = from || to;
    return one ? dateFmt.format(one) : word("eta_missing");
  }

  // The worker's ETA window {from, to, tz_offset_min}, in the order's local time:
  // "Arrives today 14:00–16:00" (shifted by the offset, then formatted as UTC).
  var localDay = new Intl.DateTimeFormat(config.lang, { month: "short", day: "numeric", timeZone: "UTC" });
  var localTime = new Intl.DateTimeFormat(config.lang, {
    hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "UTC" });
  function formatWindow(w, bare) {
    var from = parseTime(w.from), to = parseTime(w.to);
    if (!from || !to) return word("eta_missing");
    var shift = (w.tz_offset_min || 0) * 60000;
    var f = new Date(from.getTime() + shift), t = new Date(to.getTime() + shift);
    var today = new Date(Date.now() + shift);
    var days = Math.round((Date.UTC(f.getUTCFullYear(), f.getUTCMonth(), f.getUTCDate()) -
      Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate())) / 86400000);
    var values = { from: localTime.format(f), to: localTime.format(t), date: localDay.format(f) };
    var prefix = bare ? "when_" : "eta_";
    return word(prefix + (days === 0 ? "today" : days === 1 ? "tomorrow" : "on"), values);
  }
  // bare: inside a sentence ("New estimated delivery: today 14:00–16:00").
  function formatEta(range, bare) { return range && range.window ? formatWindow(range, bare) : formatRange(range); }

  // ---- the customer projection (dashboard.gateway.projection) -> what the page shows ----
  // Snapshot: {status, updated_at, promised_by, eta, skus: {id: {status, since, timeline:
  // [{status, time}], position: {lat, lon, precise} | null, qty?, eta?, promised_by?, reason?}}}.
  // Optional extras honoured when present: order-level `delay` {reason, eta} and per-SKU `route`.
  function milestoneOfStatus(status) {
    if (!status) return null;
    return M.of_status[status] || (W["m_" + status] ? status : "delayed");
  }
  function rank(m) { return M.ladder.indexOf(m); }
  function later(a, b) { var ta = parseTime(a), tb = parseTime(b); return ta && tb ? ta > tb : false; }

  function skuList(o) {
    var skus = o.skus || {};
    return Object.keys(skus).sort().map(function (id) { return Object.assign({ id: id }, skus[id]); });
  }

  function etaRange(times) {
    var ts = times.map(parseTime).filter(Boolean).sort(function (a, b) { return a - b; });
    return ts.length ? { from: ts[0], to: ts[ts.length - 1] } : null;
  }

  function delayOf(o, skus, headline) {
    var reason = null;
    if (o.delay) reason = o.delay.reason || o.delay.category || "other";
    skus.forEach(function (s) {
      if (!reason && M.delay_of_status[s.status]) reason = s.reason || M.delay_of_status[s.status];
    });
    var late = o.eta && o.promised_by && later(o.eta, o.promised_by);
    if (!reason && (late || headline === "delayed")) reason = "other";
    if (!reason) return null;
    if (M.reasons.indexOf(reason) < 0) reason = "other";
    var eta = (o.delay && o.delay.eta) || o.eta_window || o.eta;
    if (eta && typeof eta === "object") return { reason: reason, eta: Object.assign({ window: true }, eta) };
    return { reason: reason, eta: eta ? etaRange([eta]) : null };
  }

  function view(o) {
    var skus = skuList(o);
    var active = skus.filter(function (s) { return s.status !== "cancelled"; });
    var items = (active.length ? active : skus).map(function (s) {
      return { milestone: milestoneOfStatus(s.status) || "ordered", qty: s.qty || 1 };
    });
    var headline = milestoneOfStatus(o.status);
    if (!headline && items.length) {
      // The order is as far as its least advanced item: everything must arrive.
      headline = items.reduce(function (acc, it) {
        return acc === null || rank(it.milestone) < rank(acc) ? it.milestone : acc;
      }, null);
    }
    headline = headline || "ordered";
    // Each step's time: when the first item reached it.
    var timeline = {};
    skus.forEach(function (s) {
      (s.timeline || []).forEach(function (entry) {
        var m = milestoneOfStatus(entry.status);
        if (m && rank(m) >= 0 && (!timeline[m] || later(timeline[m], entry.time))) timeline[m] = entry.time;
      });
      // The worker's timeline is capped; when the order was placed/paid outlives it.
      if (s.ordered_at && (!timeline.ordered || later(timeline.ordered, s.ordered_at))) timeline.ordered = s.ordered_at;
    });
    // Steps an item went through without a scan (its carrier skipped them).
    var notScanned = {};
    skus.forEach(function (s) { (s.not_scanned || []).forEach(function (m) { notScanned[m] = true; }); });
    var etas = skus.map(function (s) { return s.eta; }).filter(Boolean);
    // One track per item: a split shipment's parcels travel separately.
    var tracks = skus.map(function (s) {
      return { id: s.id, position: s.position || null, route: s.route || null, city: s.city || null };
    });
    return {
      milestone: headline,
      eta: o.eta_window ? Object.assign({ window: true }, o.eta_window)
        : etaRange(etas.length ? etas : o.eta ? [o.eta] : []),
      delay: delayOf(o, skus, headline),
      // The courier is inside a customer area (the worker's geofences); never after delivery.
      nearby: !!o.nearby && headline !== "delivered",
      items: items,
      timeline: timeline,
      notScanned: notScanned,
      tracks: tracks,
      sharingEnded: headline === "delivered",
      tzOffset: o.eta_window ? o.eta_window.tz_offset_min : null,
      updatedAt: o.updated_at || null
    };
  }

  // ---- rendering --------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function setText(id, text) { var el = $(id); if (el.textContent !== text) el.textContent = text; }

  function render() {
    if (!state.order) return;
    var v = view(state.order);
    var ms = $("milestone");
    ms.dataset.milestone = v.milestone;
    setText("milestone", milestoneWord(v.milestone));
    if (v.milestone === "delivered") {
      setText("eta-label", word("delivered_at"));
      setText("eta", v.timeline.delivered ? formatAt(v.timeline.delivered, v.tzOffset) : word("eta_missing"));
    } else {
      setText("eta-label", word("eta_label"));
      setText("eta", formatEta(v.eta));
    }
    renderDelay(v);
    $("nearby").hidden = !v.nearby;  // "courier is nearby" (worker geofences)
    renderItems(v);
    renderTimeline(v);
    renderMap(v);
    // For people and tests alike: what the page has applied so far.
    document.body.dataset.seq = String(state.seq);
    var updated = parseTime(v.updatedAt);
    setText("updated", updated ? word("updated_at", { time: dateFmt.format(updated) }) : "");
  }

  function renderDelay(v) {
    var box = $("delay");
    if (!v.delay) { box.hidden = true; return; }
    setText("delay-reason", word("delay_reason", { reason: reasonWord(v.delay.reason || v.delay.category) }));
    var newEta = v.delay.eta || v.eta;
    setText("delay-eta", newEta ? word("delay_new_eta", { eta: formatEta(newEta, true) }) : "");
    box.hidden = false;
  }

  function renderItems(v) {
    var section = $("items");
    var total = v.items.reduce(function (n, it) { return n + it.qty; }, 0);
    if (v.items.length < 2) { section.hidden = true; return; }
    var counts = {};
    v.items.forEach(function (it) { counts[it.milestone] = (counts[it.milestone] || 0) + it.qty; });
    var order = Object.keys(counts).sort(function (a, b) { return rank(b) - rank(a); });
    var list = $("items-list");
    var lines = order.map(function (m) {
      var n = counts[m];
      var key = n === total ? "progress_all" : "progress_line";
      // "2 of 3 items out for delivery": mid-sentence, English wants the lower case.
      var name = config.lang === "en" ? milestoneWord(m).toLowerCase() : milestoneWord(m);
      // The bar is how far along the ladder these items are (delivered = full), never the
      // share of items: "All 11 items processing" is early, not done.
      var step = Math.max(0, rank(m)) / (M.ladder.length - 1);
      return { text: word(key, { n: n, total: total, milestone: name }), progress: step, m: m };
    });
    var signature = JSON.stringify(lines);
    if (list.dataset.signature === signature) { section.hidden = false; return; }
    list.dataset.signature = signature;
    list.textContent = "";
    lines.forEach(function (line) {
      var li = document.createElement("li");
      li.dataset.milestone = line.m;
      var label = document.createElement("span");
      label.textContent = line.text;
      var bar = document.createElement("span");
      bar.className = "bar";
      bar.setAttribute("aria-hidden", "true");
      var fill = document.createElement("span");
      fill.style.width = Math.round(line.progress * 100) + "%";
      li.dataset.progress = String(Math.round(line.progress * 100));
      bar.appendChild(fill);
      li.appendChild(label);
      li.appendChild(bar);
      list.appendChild(li);
    });
    section.hidden = false;
  }

  function renderTimeline(v) {
    var current = rank(v.milestone);
    if (current < 0) {
      // Beside the ladder (delayed, returns): the furthest step with a time is where it stands.
      M.ladder.forEach(function (m, i) { if (v.timeline[m]) current = i; });
    }
    var steps = document.querySelectorAll("#timeline .step");
    Array.prototype.forEach.call(steps, function (li) {
      var m = li.dataset.milestone, i = rank(m);
      var stepState = i < current ? "done" : i === current ? "current" : v.timeline[m] ? "partial" : "todo";
      if (m === "delivered" && i === current) stepState = "done";
      li.dataset.state = stepState;
      if (i === current) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
      var time = li.querySelector(".step-time");
      var t = v.timeline[m];
      var skipped = !t && i <= current && v.notScanned[m];
      var text = t ? formatAt(t, v.tzOffset) : skipped ? word("not_scanned") : i <= current ? "" : word("not_reached");
      if (skipped) li.dataset.scan = "missing"; else delete li.dataset.scan;
      if (time.textContent !== text) time.textContent = text;
      if (t) time.setAttribute("datetime", String(t)); else time.removeAttribute("datetime");
    });
  }

  // ---- map ----------------------------------------------------------------------------
  function mercator(lon, lat) {
    var clamped = Math.max(-85.0511287798, Math.min(85.0511287798, lat));
    var s = Math.sin(clamped * Math.PI / 180);
    return [(lon + 180) / 360 * 256, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * 256];
  }
  function decimals(x) {
    var text = String(x);
    if (text.indexOf("e-") >= 0) return parseInt(text.split("e-")[1], 10);
    var dot = text.indexOf(".");
    return dot < 0 ? 0 : text.length - dot - 1;
  }
  function pointOf(p) {
    if (!p) return null;
    var lat = p.lat !== undefined ? p.lat : p[0], lon = p.lon !== undefined ? p.lon : p[1];
    if (typeof lat !== "number" || typeof lon !== "number") return null;
    // Never draw sharper than given: the digits sent are the precision (JSON drops trailing
    // zeros, so the longer of the two counts), and a coarsened position (`precise: false`,
    // 2 decimals at the gateway) is never treated as sharper than its grid.
    var digits = Math.max(decimals(lat), decimals(lon));
    if (p.precise === false) digits = Math.min(digits, COARSE_DECIMALS);
    var given = p.precision_m || p.accuracy_m || p.radius_m;
    var implied = 0.5 * Math.pow(10, -digits) * 111320;
    return { lat: lat, lon: lon, xy: mercator(lon, lat), precision: Math.max(given || 0, implied),
             courier: !!(p.courier || p.precise || p.kind === "courier"), time: parseTime(p.time) };
  }
  function unitsPerMetre(lat) { return 256 / (EARTH_M * Math.cos(lat * Math.PI / 180)); }

  function svg(tag, attrs) {
    var el = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    return el;
  }

  // Tiles from Chinese providers are drawn in GCJ-02: points are shifted onto them with the
  // forward transform of geo/coords.py (wgs84_to_gcj02; identity outside China's box).
  var GCJ_A = 6378245.0, GCJ_EE = 0.00669342162296594323, PI = Math.PI;
  function toGcj02(lon, lat) {
    if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lon, lat];
    var u = lon - 105.0, v = lat - 35.0, root = Math.sqrt(Math.abs(u));
    var common = (20 * Math.sin(6 * u * PI) + 20 * Math.sin(2 * u * PI)) * 2 / 3;
    var dlat = -100 + 2 * u + 3 * v + 0.2 * v * v + 0.1 * u * v + 0.2 * root + common +
      (20 * Math.sin(v * PI) + 40 * Math.sin(v / 3 * PI)) * 2 / 3 +
      (160 * Math.sin(v / 12 * PI) + 320 * Math.sin(v * PI / 30)) * 2 / 3;
    var dlon = 300 + u + 2 * v + 0.1 * u * u + 0.1 * u * v + 0.1 * root + common +
      (20 * Math.sin(u * PI) + 40 * Math.sin(u / 3 * PI)) * 2 / 3 +
      (150 * Math.sin(u / 12 * PI) + 300 * Math.sin(u / 30 * PI)) * 2 / 3;
    var rad = lat / 180 * PI, magic = 1 - GCJ_EE * Math.pow(Math.sin(rad), 2), sq = Math.sqrt(magic);
    dlat = (dlat * 180) / ((GCJ_A * (1 - GCJ_EE)) / (magic * sq) * PI);
    dlon = (dlon * 180) / (GCJ_A / sq * Math.cos(rad) * PI);
    return [lon + dlon, lat + dlat];
  }
  var onGcj = !!(config.tiles && config.tiles.crs === "gcj02");
  function project(lon, lat) {
    if (onGcj) { var g = toGcj02(lon, lat); lon = g[0]; lat = g[1]; }
    return mercator(lon, lat);
  }

  // Prefecture outlines (offline map): one file per province, fetched when it comes into view.
  var areas = {};  // province adcode -> {areas: [...]} | "loading" | null (failed)
  function needAreas(box) {
    var wanted = Object.keys(config.areas).filter(function (code) {
      var b = config.areas[code].box;
      return b[0] <= box[2] && b[2] >= box[0] && b[1] <= box[3] && b[3] >= box[1];
    });
    wanted.forEach(function (code) {
      if (areas[code] !== undefined) return;
      areas[code] = "loading";
      fetch(config.areas[code].url, { credentials: "omit", referrerPolicy: "no-referrer" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { areas[code] = data; render(); })
        .catch(function () { areas[code] = null; });
    });
    return wanted;
  }

  function fitBox(points, minSpan) {
    var xs = points.map(function (p) { return p[0]; }), ys = points.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    var span = Math.max(x1 - x0, y1 - y0, minSpan) * 1.35;
    var cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    return [cx - span / 2, cy - span / 2, cx + span / 2, cy + span / 2];
  }
  function near(a, b, units) { return Math.abs(a[0] - b[0]) < units && Math.abs(a[1] - b[1]) < units; }

  // The route comes from the server (the worker's recent fixes, `route` per item); the
  // destination is the city's seat, never the address.
  function renderMap(v) {
    var map = $("map");
    var paths = v.tracks.map(function (t) {
      var pos = v.sharingEnded ? null : pointOf(t.position);
      var route = v.sharingEnded ? [] : (t.route || []).map(pointOf).filter(Boolean);
      var last = route[route.length - 1];
      if (pos && last && last.lat === pos.lat && last.lon === pos.lon) route.pop();
      var dest = v.sharingEnded || !t.city ? null : pointOf(t.city);
      return { pos: pos, route: route, dest: dest };
    });
    // Items travelling together share one marker.
    var seen = {};
    paths = paths.filter(function (p) {
      var key = JSON.stringify([p.pos && [p.pos.lat, p.pos.lon], p.route.map(function (r) { return [r.lat, r.lon]; })]);
      if (seen[key]) return false;
      seen[key] = true;
      return true;
    });
    var current = paths.map(function (p) { return p.pos; }).filter(Boolean)
      .sort(function (a, b) { return (a.courier ? 1 : 0) - (b.courier ? 1 : 0); });
    shownPosition = { sharingEnded: v.sharingEnded, pos: current.length ? current[current.length - 1] : null };
    // No position yet (or sharing ended): no map at all, only the caption saying so.
    var figure = $("map-figure");
    figure.dataset.empty = String(!current.length);
    // (an SVG element has no `hidden` property: the attribute itself)
    if (current.length) map.removeAttribute("hidden"); else map.setAttribute("hidden", "");
    renderCaption();
    if (!current.length) { map.textContent = ""; return; }

    [].concat.apply([], paths.map(function (p) { return p.route.concat(p.pos ? [p.pos] : [], p.dest ? [p.dest] : []); }))
      .forEach(function (pt) { pt.xy = project(pt.lon, pt.lat); });
    var focus = [];
    paths.forEach(function (p) { p.route.forEach(function (r) { focus.push(r.xy); }); });
    // Street level only with tiles to show the streets; the outlines need a city's view.
    var minSpan = config.tiles ? 0.02 : 0.4;
    current.forEach(function (pos) {
      focus.push(pos.xy);
      // The view never zooms in further than a position's precision allows.
      minSpan = Math.max(minSpan, pos.precision * unitsPerMetre(pos.lat) * 8);
    });
    // The destination joins the view when it is close (the last mile), not a province away.
    var dests = {};
    paths.forEach(function (p) {
      if (p.dest && !dests[p.dest.lat + "," + p.dest.lon]) dests[p.dest.lat + "," + p.dest.lon] = p.dest;
    });
    dests = Object.keys(dests).map(function (k) { return dests[k]; });
    dests.forEach(function (d) { if (near(d.xy, current[current.length - 1].xy, 0.5)) focus.push(d.xy); });
    var box = fitBox(focus, minSpan);
    var rect = map.getBoundingClientRect();
    var aspect = rect.width > 0 && rect.height > 0 ? rect.width / rect.height : 1;
    var w = box[2] - box[0], h = box[3] - box[1];
    if (w / h < aspect) { var nw = h * aspect; box[0] -= (nw - w) / 2; w = nw; }
    else { var nh = w / aspect; box[1] -= (nh - h) / 2; h = nh; }
    box[2] = box[0] + w; box[3] = box[1] + h;
    map.setAttribute("viewBox", [box[0], box[1], w, h].join(" "));
    var px = rect.width > 0 ? w / rect.width : w / 300;  // world units per screen pixel

    var layers = document.createDocumentFragment();
    if (config.tiles) layers.appendChild(tileLayer(box, w, h, rect.width || 300));
    else layers.appendChild(areaLayer(box, px));
    paths.forEach(function (p) {
      var line = p.route.map(function (r) { return r.xy; });
      if (p.pos && line.length) line.push(p.pos.xy);
      if (line.length > 1) {
        layers.appendChild(svg("polyline", { "class": "route", points: line.map(function (xy) { return xy.join(","); }).join(" ") }));
      }
      p.route.forEach(function (r) { layers.appendChild(svg("circle", { "class": "stop", cx: r.xy[0], cy: r.xy[1], r: 3 * px })); });
    });
    dests.forEach(function (d) {
      layers.appendChild(svg("circle", { "class": "destination", cx: d.xy[0], cy: d.xy[1], r: 9 * px,
        "data-lat": d.lat, "data-lon": d.lon }));
      layers.appendChild(svg("circle", { "class": "destination-dot", cx: d.xy[0], cy: d.xy[1], r: 3 * px }));
    });
    current.forEach(function (pos, i) {
      var radius = pos.precision * unitsPerMetre(pos.lat);
      if (radius > 10 * px) {
        layers.appendChild(svg("circle", { "class": "area", cx: pos.xy[0], cy: pos.xy[1], r: radius }));
      }
      layers.appendChild(svg("circle", { "class": "marker" + (pos.courier ? " courier" : ""), id: i ? "marker-" + i : "marker",
        cx: pos.xy[0], cy: pos.xy[1], r: 8 * px, "data-lat": pos.lat, "data-lon": pos.lon }));
    });
    map.textContent = "";
    map.appendChild(layers);
    var legend = [];
    if (paths.some(function (p) { return p.route.length; })) legend.push(word("map_route"));
    if (dests.length) legend.push(word("map_destination"));
    setText("map-legend", legend.join(" · "));
    setText("attribution", config.tiles ? config.tiles.attribution : word("map_attribution"));
  }

  // Offline: the prefectures of the provinces in view, named where their label is in view.
  function areaLayer(box, px) {
    var g = svg("g", { "class": "land-layer" });
    var labels = svg("g", { "class": "labels", "aria-hidden": "true" });
    needAreas(box).forEach(function (code) {
      var data = areas[code];
      if (!data || data === "loading") return;
      data.areas.forEach(function (a) {
        g.appendChild(svg("path", { "class": "land", d: a.d, "data-area": a.adcode }));
        var x = a.label[0], y = a.label[1];
        if (x < box[0] || x > box[2] || y < box[1] || y > box[3]) return;
        // Above the seat: the city ring and the courier sit on it.
        var label = svg("text", { x: x, y: y - 14 * px, "font-size": 13 * px, "text-anchor": "middle" });
        label.textContent = a.name;
        labels.appendChild(label);
      });
    });
    g.appendChild(labels);
    return g;
  }

  // The caption names the marker drawn on top and its age (the fix's event time against
  // this browser's clock); only a fresh courier fix is "live". Re-run on a timer, so the
  // age grows while the page stays open without updates.
  var shownPosition = null;
  function ageWord(ms) {
    var min = Math.floor(ms / 60000);
    if (min < 1) return word("age_now");
    if (min < 60) return word("age_min", { n: min });
    var h = Math.floor(min / 60);
    return h < 24 ? word("age_hour", { n: h }) : word("age_day", { n: Math.floor(h / 24) });
  }
  function renderCaption() {
    if (!shownPosition) return;
    var pos = shownPosition.pos, live = false, caption;
    if (shownPosition.sharingEnded) caption = word("map_sharing_ended");
    else if (!pos) caption = word("map_no_position");
    else {
      var age = pos.time ? Math.max(0, Date.now() - pos.time.getTime()) : null;
      live = pos.courier && age !== null && age < config.live_within_s * 1000;
      caption = live ? word("map_courier") : word(pos.courier ? "map_courier_last" : "map_approximate");
      if (!live && age !== null) caption += " · " + ageWord(age);
    }
    $("map-caption").dataset.live = String(live);
    setText("map-caption", caption);
  }

  function tileLayer(box, w, h, widthPx) {
    var g = svg("g", { "class": "tiles" });
    var z = Math.max(0, Math.min(config.tiles.max_zoom, Math.round(Math.log2(widthPx / w))));
    var size = 256 / Math.pow(2, z), n = Math.pow(2, z);
    var tx0 = Math.max(0, Math.floor(box[0] / size)), tx1 = Math.min(n - 1, Math.floor((box[0] + w) / size));
    var ty0 = Math.max(0, Math.floor(box[1] / size)), ty1 = Math.min(n - 1, Math.floor((box[1] + h) / size));
    if ((tx1 - tx0 + 1) * (ty1 - ty0 + 1) > 64) return g;
    for (var x = tx0; x <= tx1; x++) {
      for (var y = ty0; y <= ty1; y++) {
        var href = config.tiles.url.replace("{z}", z).replace("{x}", x).replace("{y}", y);
        // No Referer goes to the tile server: the page's Referrer-Policy covers SVG images.
        g.appendChild(svg("image", { "class": "tile", href: href, x: x * size, y: y * size, width: size, height: size }));
      }
    }
    return g;
  }

  // ---- the live connection -----------------------------------------------------------
  function setConn(kind) {
    var el = $("conn");
    if (el.dataset.state === kind) return;
    el.dataset.state = kind;
    setText("conn-text", word("conn_" + kind));
  }

  function socketUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + config.ws_path;
  }

  // Close codes of dashboard.gateway.ws_track: 4404 unknown/expired/revoked token. Another
  // instance (or this one, just restarted and still reading the links) may not know a fresh
  // grant yet, so a 4404 is checked against the page itself: only when the page answers 404
  // too is the link gone. Everything else (4008 too slow, 4429 throttled, 1006 server gone)
  // is retried with backoff, resuming from the last seq.
  var NOT_FOUND_CLOSE = 4404;
  var PING_EVERY_MS = 25000;
  var PONG_WITHIN_MS = 10000;
  var pingTimer = null;
  var pongDeadline = null;

  function connect() {
    retryTimer = null;
    if (stopped) return;
    setConn(state.seq === null && attempt === 0 ? "connecting" : "reconnecting");
    var ws;
    try { ws = new WebSocket(socketUrl()); } catch (e) { scheduleReconnect(); return; }
    socket = ws;
    ws.onopen = function () {
      var hello = { type: "subscribe", token: token };
      if (state.seq !== null) hello.last_seq = state.seq;
      ws.send(JSON.stringify(hello));
      startPings(ws);
    };
    ws.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (pongDeadline) { clearTimeout(pongDeadline); pongDeadline = null; }
      handle(ws, msg);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      stopPings();
      if (event.code === NOT_FOUND_CLOSE) { checkLink(); return; }
      scheduleReconnect();
    };
  }

  function startPings(ws) {
    stopPings();
    // A phone that changed networks keeps a dead socket open for minutes; a ping that
    // goes unanswered shows "reconnecting" and starts over.
    pingTimer = setInterval(function () {
      if (socket !== ws || ws.readyState !== WebSocket.OPEN) return;
      ws.send('{"type":"ping"}');
      if (!pongDeadline) pongDeadline = setTimeout(function () { pongDeadline = null; resync(ws); }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }
  function stopPings() {
    if (pingTimer) { clearInterval(pingTimer); pingTimer = null; }
    if (pongDeadline) { clearTimeout(pongDeadline); pongDeadline = null; }
  }

  function checkLink() {
    setConn("reconnecting");
    fetch(location.pathname, { method: "HEAD", cache: "no-store", credentials: "omit" })
      .then(function (r) { if (r.status === 404) stop(); else scheduleReconnect(); })
      .catch(function () { scheduleReconnect(); });
  }

  function stop() {
    stopped = true;
    // The link is gone (expired or revoked): the server now answers with the not-found
    // page. Reload at most once a minute, in case the server still shows the order.
    var key = "orderradar-reloaded";
    var last = Number(sessionStorage.getItem(key) || 0);
    if (Date.now() - last > 60000) {
      try { sessionStorage.setItem(key, String(Date.now())); } catch (e) { /* private mode */ }
      location.reload();
    } else {
      setConn("reconnecting");
    }
  }

  function scheduleReconnect() {
    if (stopped || retryTimer) return;
    setConn("reconnecting");
    // Full jitter: a random wait in [0, min(cap, base * 2^attempt)] spreads a crowd of
    // phones out after a server restart instead of having them all return at once.
    var ceiling = Math.min(BACKOFF_CAP_S, BACKOFF_BASE_S * Math.pow(2, attempt));
    attempt += 1;
    retryTimer = setTimeout(connect, Math.random() * ceiling * 1000);
  }

  function resync(ws) {
    // A gap in seq or a silent socket: drop this connection, resume from the last seq applied.
    if (socket === ws) { socket = null; stopPings(); ws.close(); scheduleReconnect(); }
  }

  function becameLive() {
    attempt = 0;
    setConn("live");
  }

  function handle(ws, msg) {
    if (socket !== ws) return;
    var type = msg.type;
    if (type === "snapshot") {
      state.order = msg;
      state.seq = msg.seq;
      becameLive();
      render();
    } else if (type === "delta") {
      if (state.order === null || typeof msg.seq !== "number") return;
      if (msg.seq <= state.seq) return;  // already applied (replay overlap)
      // Worker seqs may skip numbers; a delta names the seq it continues from.
      if (msg.from_seq !== state.seq) { resync(ws); return; }
      applyDelta(msg);
      state.seq = msg.seq;
      becameLive();
      render();
    } else if (type === "subscribed") {
      // On a resume the server sends nothing more when we are already current.
      if (state.order !== null) becameLive();
    }
  }

  function applyDelta(msg) {
    // As dashboard.gateway.messages.apply_delta: new header fields, changed SKUs replaced
    // whole, removed SKUs dropped.
    var skus = {};
    var old = state.order.skus || {};
    var removed = msg.removed || [];
    Object.keys(old).forEach(function (id) { if (removed.indexOf(id) < 0) skus[id] = old[id]; });
    var changed = msg.skus || {};
    Object.keys(changed).forEach(function (id) { skus[id] = changed[id]; });
    var next = {};
    Object.keys(msg).forEach(function (k) {
      if (["type", "seq", "from_seq", "skus", "removed"].indexOf(k) < 0) next[k] = msg[k];
    });
    next.skus = skus;
    state.order = next;
  }

  window.addEventListener("resize", function () { if (state.order) render(); });
  document.addEventListener("visibilitychange", function () {
    // Phones park background tabs; come back at once instead of waiting out the backoff.
    if (document.visibilityState === "visible" && !socket && !stopped) {
      if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
      connect();
    }
  });

  setInterval(renderCaption, config.age_refresh_s * 1000);
  connect();
})();
