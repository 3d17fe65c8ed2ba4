// Mystic's dashboard: plain JavaScript, no library, no build step (api/_dashboard.py says
// why). It loads the last hour from /api/v1/dashboard/history, then follows
// /api/v1/dashboard/stream (Server-Sent Events; the browser reconnects by itself after a
// dropped connection, and this page after a refused one, backing off). Charts are SVG drawn
// here; every drawn value is also a data- attribute, which tests read.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const HOUR_MS = 3600 * 1000;
  const TOKEN_KEY = "mystic.admin_token";
  const $ = (id) => document.getElementById(id);

  const view = {
    fields: [],
    rows: [], // objects keyed by field name
    live: null,
    procs: [],
    alerts: [],
    audit: [],
    recs: null,
    symbol: null,
    source: null,
    pending: null, // the control operation waiting for a token
    drawQueued: false,
    lastLevel: null,
    lastRecs: null,
  };

  // -- formatting ------------------------------------------------------------------------

  const nf = (digits) =>
    new Intl.NumberFormat(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  const formats = [];
  const fmt = (digits) => (formats[digits] ||= nf(digits));
  const n0 = fmt(0);
  const n1 = fmt(1);

  function num(value, unit, digits = 1) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    const f = fmt(digits);
    return unit ? `${f.format(value)} ${unit}` : f.format(value);
  }

  // The decimals a tick step needs to be written exactly (0.05 needs 2), so that ticks one
  // step apart never read the same.
  function decimalsOf(step) {
    for (let d = 0; d < 8; d += 1) {
      const scaled = step * 10 ** d;
      if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
    }
    return 8;
  }

  function utc(ms) {
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function localTime(ms, withSeconds = true) {
    const opts = { hour: "2-digit", minute: "2-digit" };
    if (withSeconds) opts.second = "2-digit";
    return new Date(ms).toLocaleTimeString(undefined, opts);
  }

  // A time-axis label precise enough that labels ``spacing`` ms apart differ: seconds over
  // a short span, the day over a long one.
  function tickTime(ms, spacing) {
    if (spacing < 120000) return localTime(ms, true);
    if (spacing < 6 * 3600000) return localTime(ms, false);
    const day = { month: "short", day: "numeric" };
    if (spacing >= 3 * 86400000) return new Date(ms).toLocaleDateString(undefined, day);
    return new Date(ms).toLocaleString(undefined, { ...day, hour: "2-digit", minute: "2-digit" });
  }

  function age(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 90) return `${n0.format(s)} s`;
    if (s < 5400) return `${n0.format(s / 60)} min`;
    if (s < 172800) return `${n1.format(s / 3600)} h`;
    return `${n1.format(s / 86400)} d`;
  }

  function timeEl(ms, text) {
    const t = document.createElement("time");
    t.dateTime = new Date(ms).toISOString();
    t.title = utc(ms);
    t.textContent = text === undefined ? localTime(ms) : text;
    return t;
  }

  function setFig(id, value, unit, digits) {
    const el = $(id);
    el.textContent = num(value, unit, digits);
    el.dataset.value = value === null || value === undefined ? "" : String(value);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // -- the SVG renderer ------------------------------------------------------------------

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  // The widest of ``texts`` as drawn in ``svg`` (its labels' font), so an axis makes room
  // for its longest label instead of clipping it.
  function textWidth(svg, texts) {
    const probe = svgEl("text", { x: 0, y: -20, class: "probe" });
    svg.append(probe);
    let widest = 0;
    for (const text of texts) {
      probe.textContent = text;
      const w = probe.getComputedTextLength() || text.length * 6.5; // 0 while not laid out
      widest = Math.max(widest, w);
    }
    probe.remove();
    return Math.ceil(widest);
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(value));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= value) return m * p;
    return 10 * p;
  }

  // A line chart over time: series [{name, values, cls}] over times (UTC ms), with marks
  // [{t, kind}] (a vertical line; kind "pause" a band one sample wide).
  function fit(svg) {
    // The viewBox follows the drawn width, so labels keep their size on a phone and a laptop.
    const box = svg.viewBox.baseVal;
    const W = Math.max(280, Math.round(svg.clientWidth || box.width));
    if (W !== box.width) svg.setAttribute("viewBox", `0 0 ${W} ${box.height}`);
    return [W, box.height];
  }

  function lineChart(svg, times, series, opts) {
    const [W, H] = fit(svg);
    const right = 8;
    const top = 8;
    const bottom = 20;
    svg.replaceChildren();
    const values = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
    svg.dataset.points = String(times.length);
    if (!times.length || !values.length) {
      svg.dataset.drawn = "0";
      const t = svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "nodata" });
      t.textContent = opts.empty || "no data yet";
      svg.append(t);
      return;
    }
    const t1 = times[times.length - 1];
    // The hour kept, or less while less is kept (a minute at least).
    const t0 = Math.min(Math.max(times[0], t1 - (opts.spanMs || 0)), t1 - 60000);
    const span = Math.max(1, t1 - t0);
    const ymax = opts.max !== undefined ? opts.max : niceMax(Math.max(...values));
    const ticks = [0, 0.5, 1].map((frac) => ymax * frac);
    const digits = decimalsOf(ymax / 2);
    const texts = ticks.map((v) => num(v, opts.unit, digits));
    const left = textWidth(svg, texts) + 10;
    const x = (t) => left + ((t - t0) / span) * (W - left - right);
    const y = (v) => top + (1 - Math.min(v, ymax) / ymax) * (H - top - bottom);
    ticks.forEach((v, i) => {
      svg.append(svgEl("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid-line" }));
      const label = svgEl("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", class: "y-tick" });
      label.textContent = texts[i];
      svg.append(label);
    });
    for (const [i, t] of [t0, (t0 + t1) / 2, t1].entries()) {
      const label = svgEl("text", {
        x: x(t),
        y: H - 5,
        "text-anchor": ["start", "middle", "end"][i],
        class: "x-tick",
      });
      label.textContent = tickTime(t, span / 2);
      const title = svgEl("title", {});
      title.textContent = utc(t);
      label.append(title);
      svg.append(label);
    }
    const step = times.length > 1 ? span / (times.length - 1) : span;
    for (const m of opts.marks || []) {
      if (m.kind === "pause") {
        const r = svgEl("rect", {
          x: x(m.t - step),
          y: top,
          width: Math.max(2, x(m.t) - x(m.t - step)),
          height: H - top - bottom,
          class: "mark mark-pause",
          "data-kind": m.kind,
          "data-t": String(m.t),
        });
        svg.append(r);
      } else {
        const l = svgEl("line", {
          x1: x(m.t),
          x2: x(m.t),
          y1: top,
          y2: H - bottom,
          class: `mark mark-${m.kind}`,
          "data-kind": m.kind,
          "data-t": String(m.t),
        });
        const title = svgEl("title", {});
        title.textContent = `${m.label || m.kind} at ${utc(m.t)}`;
        l.append(title);
        svg.append(l);
      }
    }
    for (const s of series) {
      let d = "";
      let pen = false;
      let last = null;
      let max = null;
      let count = 0;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) {
          pen = false;
          return;
        }
        d += `${pen ? "L" : "M"}${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
        last = v;
        max = max === null ? v : Math.max(max, v);
        count += 1;
      });
      const path = svgEl("path", {
        d: d || "M0,0",
        class: `series s-${s.cls || s.name}`,
        "data-series": s.name,
        "data-last": last === null ? "" : String(last),
        "data-max": max === null ? "" : String(max),
        "data-count": String(count),
      });
      const title = svgEl("title", {});
      title.textContent = `${s.name}: ${num(last, opts.unit)}`;
      path.append(title);
      svg.append(path);
    }
    svg.dataset.drawn = "1";
    svg.dataset.ymax = String(ymax);
  }

  // Candlesticks of [{open_time, open, high, low, close, final}] with, along the bottom, a
  // band per part of the window ([{start, end, layer}]: where each range was read when the
  // answer was assembled); with no parts, one band of the layer that served it.
  function candleChart(svg, candles, layer, parts) {
    const [W, H] = fit(svg);
    const right = 8;
    const top = 8;
    const bottom = 30;
    svg.replaceChildren();
    svg.dataset.candles = String(candles.length);
    svg.dataset.layer = layer || "";
    if (!candles.length) {
      const t = svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "nodata" });
      t.textContent = "no candles in this window";
      svg.append(t);
      return;
    }
    const lows = candles.map((c) => Number(c.low));
    const highs = candles.map((c) => Number(c.high));
    let lo = Math.min(...lows);
    let hi = Math.max(...highs);
    if (hi === lo) {
      hi += 1;
      lo -= 1;
    }
    const pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    const ticks = [0, 0.5, 1].map((frac) => lo + (hi - lo) * frac);
    // Enough decimals for ticks half the range apart to differ (two at least, as prices go).
    const digits = Math.min(8, Math.max(2, Math.ceil(-Math.log10((hi - lo) / 2)) + 1));
    const texts = ticks.map((v) => num(v, "", digits));
    const left = textWidth(svg, texts) + 10;
    const slot = (W - left - right) / candles.length;
    const y = (v) => top + ((hi - v) / (hi - lo)) * (H - top - bottom);
    ticks.forEach((v, i) => {
      svg.append(svgEl("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid-line" }));
      const label = svgEl("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", class: "y-tick" });
      label.textContent = texts[i];
      svg.append(label);
    });
    candles.forEach((c, i) => {
      const o = Number(c.open);
      const cl = Number(c.close);
      const cx = left + slot * (i + 0.5);
      const g = svgEl("g", {
        class: `candle ${cl >= o ? "up" : "down"}`,
        "data-open-time": String(c.open_time),
        "data-open": c.open,
        "data-high": c.high,
        "data-low": c.low,
        "data-close": c.close,
        "data-final": String(c.final),
      });
      g.append(svgEl("line", { x1: cx, x2: cx, y1: y(Number(c.high)), y2: y(Number(c.low)) }));
      const bodyTop = y(Math.max(o, cl));
      g.append(
        svgEl("rect", {
          x: cx - Math.max(1, slot * 0.35),
          y: bodyTop,
          width: Math.max(2, slot * 0.7),
          height: Math.max(1, y(Math.min(o, cl)) - bodyTop),
        }),
      );
      const title = svgEl("title", {});
      title.textContent =
        `${utc(c.open_time)}  O ${c.open}  H ${c.high}  L ${c.low}  C ${c.close}` +
        (c.final ? "" : "  (open)");
      g.append(title);
      svg.append(g);
    });
    const first = candles[0].open_time;
    const lastT = candles[candles.length - 1].open_time;
    const ranges = parts && parts.length ? parts : [{ start: first, end: lastT + 1, layer }];
    svg.dataset.parts = String(ranges.length);
    ranges.forEach((part) => {
      // The slots of the candles that open within the part.
      const i0 = candles.findIndex((c) => c.open_time >= part.start);
      let i1 = -1;
      candles.forEach((c, i) => {
        if (c.open_time < part.end) i1 = i;
      });
      if (i0 < 0 || i1 < i0) return;
      const band = svgEl("rect", {
        x: left + slot * i0,
        y: H - bottom + 4,
        width: slot * (i1 - i0 + 1),
        height: 8,
        class: `layer-band layer-${part.layer}`,
        "data-layer": part.layer || "",
        "data-from": String(part.start),
        "data-to": String(part.end),
        "data-candles": String(i1 - i0 + 1),
      });
      const bandTitle = svgEl("title", {});
      bandTitle.textContent =
        `${utc(candles[i0].open_time)} to ${utc(candles[i1].open_time)}: ` +
        `${i1 - i0 + 1} candles read from ${part.layer}`;
      band.append(bandTitle);
      svg.append(band);
    });
    for (const [i, t] of [first, lastT].entries()) {
      const label = svgEl("text", {
        x: i ? W - right : left,
        y: H - 2,
        "text-anchor": i ? "end" : "start",
        class: "x-tick",
      });
      label.textContent = tickTime(t, lastT - first);
      const title = svgEl("title", {});
      title.textContent = utc(t);
      label.append(title);
      svg.append(label);
    }
    const tag = svgEl("text", { x: W / 2, y: H - 2, "text-anchor": "middle" });
    tag.textContent = `served from ${layer}`;
    svg.append(tag);
  }

  // -- state -----------------------------------------------------------------------------

  function addRow(row) {
    const o = {};
    view.fields.forEach((f, i) => {
      o[f] = row[i];
    });
    const last = view.rows[view.rows.length - 1];
    if (last && o.t <= last.t) return;
    view.rows.push(o);
    const cutoff = o.t - HOUR_MS;
    while (view.rows.length && view.rows[0].t < cutoff) view.rows.shift();
  }

  function takePanels(frame) {
    if (frame.live !== undefined) view.live = frame.live;
    if (frame.procs !== undefined) view.procs = frame.procs || [];
    if (frame.alerts !== undefined) view.alerts = frame.alerts || [];
    if (frame.audit !== undefined) view.audit = frame.audit || [];
  }

  function queueDraw() {
    if (view.drawQueued) return;
    view.drawQueued = true;
    requestAnimationFrame(() => {
      view.drawQueued = false;
      draw();
    });
  }

  // Per-second rates of a per-sample counter.
  function rate(field) {
    return view.rows.map((r, i) => {
      if (i === 0) return null;
      const dt = (r.t - view.rows[i - 1].t) / 1000;
      return dt > 0 ? r[field] / dt : null;
    });
  }

  // -- panels ----------------------------------------------------------------------------

  function draw() {
    const rows = view.rows;
    const live = view.live || {};
    const times = rows.map((r) => r.t);
    const latest = rows[rows.length - 1] || {};
    const empty = !live.requests && !rows.some((r) => r.req > 0);
    $("empty").hidden = !empty;
    document.body.dataset.empty = empty ? "1" : "0";

    $("venue").textContent = live.venue || "…";
    $("level").textContent = live.level ? `level ${live.level}` : "…";
    $("level").dataset.level = live.level || "";
    $("health").textContent = `health ${live.health || "unknown"}`;
    $("health").dataset.status = live.health || "unknown";
    if (latest.t) {
      $("updated").replaceChildren(timeEl(latest.t, `updated ${localTime(latest.t)}`));
    }

    // Weight.
    setFig("fig-used", latest.used, "weight/min", 0);
    setFig("fig-ceiling", live.ceiling, "weight/min", 0);
    setFig("fig-limit", live.limit, "weight/min", 0);
    const n429 = rows.reduce((a, r) => a + (r.n429 || 0), 0);
    const n418 = rows.reduce((a, r) => a + (r.n418 || 0), 0);
    $("fig-4xx").textContent = `${n0.format(n429)} / ${n0.format(n418)} in 1 h`;
    $("fig-4xx").dataset.value = `${n429}/${n418}`;
    const now = Date.now();
    const hold =
      live.banned_until && live.banned_until > now
        ? `banned ${age(2 * now - live.banned_until)} more`
        : live.paused_until && live.paused_until > now
          ? `paused ${n0.format((live.paused_until - now) / 1000)} s more`
          : "none";
    $("fig-hold").textContent = hold;
    const marks = [];
    for (const r of rows) {
      if (r.n429) marks.push({ t: r.t, kind: "429", label: `${r.n429} x 429` });
      if (r.n418) marks.push({ t: r.t, kind: "418", label: `${r.n418} x 418` });
      if (r.paused || r.banned) marks.push({ t: r.t, kind: "pause" });
    }
    lineChart(
      $("chart-weight"),
      times,
      [
        { name: "used", values: rows.map((r) => r.used) },
        { name: "ceiling", values: rows.map((r) => r.ceiling) },
        { name: "limit", values: rows.map((r) => r.limit) },
      ],
      { unit: "w/min", marks, spanMs: HOUR_MS },
    );

    // Layers and hit rate.
    const layers = ["memory", "redis", "store", "upstream"];
    lineChart(
      $("chart-layers"),
      times,
      layers.map((name) => ({ name, values: rate(name) })),
      { unit: "req/s", spanMs: HOUR_MS },
    );
    const hits = rows.map((r) => (r.req > 0 ? (100 * (r.req - r.upstream)) / r.req : null));
    lineChart($("chart-hit"), times, [{ name: "hit", values: hits }], {
      unit: "%",
      max: 100,
      spanMs: HOUR_MS,
      empty: "hit rate: no requests yet",
    });
    setFig("fig-hit", live.hit_pct, "%", 1);
    setFig("fig-saved", live.saved, "calls", 0);
    setFig("fig-requests", live.requests, "", 0);

    // Latency and stale.
    lineChart(
      $("chart-latency"),
      times,
      [
        { name: "p50", values: rows.map((r) => r.p50) },
        { name: "p95", values: rows.map((r) => r.p95) },
      ],
      { unit: "ms", spanMs: HOUR_MS, empty: "no upstream call yet" },
    );
    lineChart($("chart-stale"), times, [{ name: "stale", values: rate("stale") }], {
      unit: "/s",
      spanMs: HOUR_MS,
    });
    setFig("fig-p50", latest.p50, "ms", 1);
    setFig("fig-p95", latest.p95, "ms", 1);
    setFig(
      "fig-stale",
      rows.reduce((a, r) => a + (r.stale || 0), 0),
      "answers",
      0,
    );

    // Queue.
    lineChart($("chart-qdepth"), times, [{ name: "qd", values: rows.map((r) => r.qd) }], {
      unit: "",
      spanMs: HOUR_MS,
    });
    lineChart($("chart-qwait"), times, [{ name: "qw", values: rows.map((r) => r.qw) }], {
      unit: "ms",
      spanMs: HOUR_MS,
      empty: "no queue wait measured yet",
    });
    setFig("fig-qd", latest.qd, "waiting", 0);
    setFig("fig-qw", latest.qw, "ms", 1);

    drawProcs();
    drawAlerts();
    drawAudit();
    if (live.level !== view.lastLevel || live.recs !== view.lastRecs) {
      view.lastLevel = live.level;
      view.lastRecs = live.recs;
      loadRecs();
    }
  }

  function drawProcs() {
    const body = $("procs").tBodies[0];
    const alive = view.procs.filter((p) => p.state === "alive").length;
    $("procs-count").textContent = `${alive} alive, ${view.procs.length - alive} gone`;
    body.replaceChildren(
      ...view.procs.map((p) =>
        el(
          "tr",
          { "data-state": p.state, "data-id": p.id },
          el("td", { title: p.host || "" }, p.host ? `${p.id} @ ${p.host}` : p.id),
          el("td", {}, p.state === "alive" ? "alive" : `${p.state} ${n0.format(p.age_s)} s`),
          el("td", {}, num(p.weight_per_s, "w/s", 1)),
          el("td", {}, num(p.requests, "", 0)),
          el("td", {}, num(p.hit_pct, "%", 1)),
          el("td", {}, num(p.p95, "ms", 1)),
          el("td", {}, num(p.qd, "", 0)),
          el("td", {}, `${p.n429} / ${p.n418}`),
        ),
      ),
    );
  }

  function drawAlerts() {
    const list = $("alerts");
    if (!view.alerts.length) {
      list.replaceChildren(el("li", { class: "none" }, "No open alert."));
      return;
    }
    list.replaceChildren(
      ...view.alerts.map((a) =>
        el(
          "li",
          { "data-severity": a.severity, "data-rule": a.rule },
          el("span", { class: `sev sev-${a.severity}` }, a.severity),
          `${a.rule} (${a.subject}) for `,
          timeEl(a.opened, age(a.opened)),
          el("div", { class: "evidence" }, a.message),
        ),
      ),
    );
  }

  function drawAudit() {
    const list = $("audit");
    if (!view.audit.length) {
      list.replaceChildren(el("li", { class: "none" }, "No level change, optimization, ban or clear yet."));
      return;
    }
    list.replaceChildren(
      ...view.audit.map((e) =>
        el(
          "li",
          { "data-field": e.field },
          e.at ? timeEl(e.at) : null,
          ` ${e.field}: ${e.from ?? "–"} → ${e.to ?? "–"} by ${e.actor}`,
          e.reason ? el("div", { class: "evidence" }, e.reason) : null,
        ),
      ),
    );
  }

  // -- recommendations and control -------------------------------------------------------

  async function loadRecs() {
    let body;
    try {
      const res = await fetch("/api/v1/recommendations");
      if (!res.ok) {
        $("recs").replaceChildren(el("li", { class: "none" }, `recommendations: HTTP ${res.status}`));
        return;
      }
      body = await res.json();
    } catch (err) {
      $("recs").replaceChildren(el("li", { class: "none" }, "recommendations unavailable"));
      return;
    }
    const recs = body.recommendations || [];
    if (!recs.length) {
      $("recs").replaceChildren(el("li", { class: "none" }, "No recommendation: nothing to change now."));
      return;
    }
    $("recs").replaceChildren(
      ...recs.map((r) =>
        el(
          "li",
          { "data-rule": r.rule },
          el("strong", {}, r.title),
          ` ${r.setting}: ${r.from} → ${r.to}. ${r.expected || ""} `,
          r.applicable
            ? el("button", { type: "button", "data-op": "apply", "data-rule": r.rule }, "Apply")
            : el("span", { class: "muted" }, "(needs an operator)"),
          el("div", { class: "evidence" }, `${r.reason}  ${JSON.stringify(r.evidence)}`),
        ),
      ),
    );
  }

  const OPS = {
    apply: { path: "optimize", body: (rule) => ({ reason: `applied from the dashboard: ${rule}` }) },
    optimize: { path: "optimize", body: () => ({ reason: "dashboard" }) },
    increase: { path: "increase", body: () => ({ reason: "dashboard" }) },
    decrease: { path: "decrease", body: () => ({ reason: "dashboard" }) },
    clear: { path: "clear", body: () => ({ reason: "dashboard" }) },
  };

  function showResult(text, kind) {
    const box = $("action-result");
    box.textContent = text;
    box.className = `result ${kind}`;
    box.dataset.kind = kind;
  }

  function describe(op, body) {
    if (body.message) return body.message;
    if (op === "clear") {
      return `cleared ${JSON.stringify(body)}`;
    }
    return JSON.stringify(body);
  }

  async function runOp(op, rule) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      view.pending = { op, rule };
      $("token-form").hidden = false;
      $("token-input").focus();
      return;
    }
    const spec = OPS[op];
    showResult(`${op}…`, "busy");
    let res;
    try {
      res = await fetch(`/api/v1/admin/${spec.path}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify(spec.body(rule)),
      });
    } catch (err) {
      showResult(`${op}: the service did not answer (${err.message})`, "error");
      return;
    }
    let body = {};
    try {
      body = await res.json();
    } catch (err) {
      body = {};
    }
    if (res.ok) {
      showResult(`${op}: ${describe(op, body)}`, "done");
      loadRecs();
      return;
    }
    const e = body.error || {};
    if (res.status === 401) sessionStorage.removeItem(TOKEN_KEY); // asked again next time
    showResult(`${op} refused (HTTP ${res.status} ${e.code || ""}): ${e.message || res.statusText}`, "error");
  }

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-op]");
    if (button) runOp(button.dataset.op, button.dataset.rule);
  });

  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token-input").value = "";
    $("token-form").hidden = true;
    const pending = view.pending;
    view.pending = null;
    if (pending) runOp(pending.op, pending.rule);
  });

  $("token-cancel").addEventListener("click", () => {
    view.pending = null;
    $("token-form").hidden = true;
  });

  // -- market ----------------------------------------------------------------------------

  let candleTimer = null;

  async function loadCandles() {
    const symbol = view.symbol;
    const interval = $("interval").value;
    const q = new URLSearchParams({ interval, limit: "60" });
    let res;
    try {
      res = await fetch(`/api/v1/candles/${encodeURIComponent(symbol)}?${q}`);
    } catch (err) {
      $("candles-source").textContent = `candles: the service did not answer`;
      return;
    }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = body.error || {};
      $("candles-source").textContent = `${symbol}: ${e.message || `HTTP ${res.status}`}`;
      $("chart-candles").replaceChildren();
      return;
    }
    const src = body.source || {};
    const parts = body.parts || [];
    candleChart($("chart-candles"), body.candles || [], src.layer, parts);
    const line = $("candles-source");
    line.dataset.layer = src.layer || "";
    // Where the window was read when it was assembled, in candles per layer.
    const read = {};
    $("chart-candles")
      .querySelectorAll("rect.layer-band")
      .forEach((b) => {
        read[b.dataset.layer] = (read[b.dataset.layer] || 0) + Number(b.dataset.candles);
      });
    const assembled = Object.entries(read)
      .map(([l, n]) => `${n} from ${l}`)
      .join(", ");
    line.textContent =
      `${body.symbol} ${body.interval}: ${(body.candles || []).length} candles served from ${src.layer}` +
      (src.stale ? " (stale)" : "") +
      (src.age_ms !== undefined ? `, ${num(src.age_ms / 1000, "s", 1)} old` : "") +
      (parts.length ? `; read ${assembled}` : "");
  }

  function drawTicker(t) {
    const p = $("ticker");
    if (!t) return;
    p.classList.remove("muted");
    if (t.error) {
      p.textContent = `${t.symbol}: ${t.error}`;
      p.dataset.price = "";
      return;
    }
    p.dataset.price = t.price;
    p.dataset.layer = t.layer;
    p.textContent =
      `${t.symbol} ${t.price}  bid ${t.bid}  ask ${t.ask}  24 h ${t.change_pct} %  ` +
      `from ${t.layer}, ${num(t.age_ms / 1000, "s", 1)} old${t.stale ? " (stale)" : ""}`;
  }

  $("market-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const symbol = $("symbol").value.trim().toUpperCase();
    if (!symbol) return;
    view.symbol = symbol;
    loadCandles();
    clearInterval(candleTimer);
    candleTimer = setInterval(loadCandles, 10000);
    connect();
  });

  // -- live ------------------------------------------------------------------------------

  // After a dropped connection EventSource reconnects by itself (the stream sends retry:),
  // but a refused one (any answer but 200, such as a 503 while the service sheds load or
  // restarts) closes it for good: then this page tries again, 1 s later, doubling up to
  // 30 s, and reloads the history it missed.
  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 30000;
  let source = null;
  let retryMs = RETRY_FIRST_MS;
  let retryTimer = null;

  function count(name) {
    document.body.dataset[name] = String(Number(document.body.dataset[name] || 0) + 1);
  }

  function retryLater() {
    if (retryTimer !== null) return;
    const wait = retryMs;
    retryMs = Math.min(2 * retryMs, RETRY_MAX_MS);
    const conn = $("conn");
    conn.dataset.state = "down";
    conn.textContent = `disconnected, retrying in ${n0.format(wait / 1000)} s`;
    retryTimer = setTimeout(async () => {
      retryTimer = null;
      count("retries");
      await loadHistory();
      queueDraw();
      connect();
    }, wait);
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (source) source.close();
    const url = view.symbol
      ? `/api/v1/dashboard/stream?symbol=${encodeURIComponent(view.symbol)}`
      : "/api/v1/dashboard/stream";
    const es = new EventSource(url);
    source = es;
    const conn = $("conn");
    es.onopen = () => {
      retryMs = RETRY_FIRST_MS;
      if (!view.fields.length) loadHistory().then(queueDraw); // it failed at the start
      conn.dataset.state = "live";
      conn.textContent = "live";
    };
    es.onerror = () => {
      if (es !== source) return;
      if (es.readyState === EventSource.CLOSED) {
        retryLater();
        return;
      }
      conn.dataset.state = "connecting";
      conn.textContent = "reconnecting";
    };
    es.onmessage = (ev) => {
      const frame = JSON.parse(ev.data);
      if (frame.s && view.fields.length) addRow(frame.s);
      takePanels(frame);
      if (frame.ticker) drawTicker(frame.ticker);
      count("frames");
      queueDraw();
    };
  }

  // The hour kept by the service, merged into what the page has (rows it already holds are
  // skipped); false when the service did not give it.
  async function loadHistory() {
    try {
      const res = await fetch("/api/v1/dashboard/history");
      if (!res.ok) return false;
      const hist = await res.json();
      view.fields = hist.fields;
      for (const row of hist.samples) addRow(row);
      takePanels(hist);
    } catch (err) {
      return false;
    }
    count("histories");
    return true;
  }

  async function start() {
    for (const span of document.querySelectorAll(".origin")) span.textContent = location.origin;
    if (!(await loadHistory())) $("conn").textContent = "history unavailable";
    draw();
    document.body.dataset.ready = "1";
    connect();
    setInterval(queueDraw, 30000); // ages of alerts move on between frames
    if (view.live && view.live.requests) {
      $("market-form").requestSubmit();
    }
  }

  start();
})();
