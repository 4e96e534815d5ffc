// The dashboard: polls GET /v1/metrics/summary every few seconds and draws it. Charts
// (uPlot) come from the summary's 15-minute timeline, except queue lengths, which the
// API reports only as "now" and this page samples at every poll. window.dashboard holds
// the last summary and every chart's data, for people debugging and for tests.
"use strict";

const { el, fill, ms } = snaprag;
const $ = (id) => document.getElementById(id);

const POLL_MS = 3000;
const QUEUE_SAMPLES = 300; // 15 minutes of polls
const HEIGHT = 180;
const SPAN_S = 900; // the timeline covers 15 minutes
const COLORS = ["#2457c5", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#0b7285", "#e67700"];

const state = (window.dashboard = {
  polls: 0,
  failures: 0,
  error: null,
  summary: null,
  charts: {}, // element id -> uPlot
  data: {}, // element id -> the chart's data: [x, series...]
  queues: { t: [], lanes: {} },
});

let generation = 0; // a new key restarts polling; answers of the old loop are dropped
let timer = null;

async function poll(gen) {
  if (!document.hidden) {
    try {
      const summary = await snaprag.json(`/v1/metrics/summary?window=${$("window").value}`);
      if (gen !== generation) return;
      state.summary = summary;
      state.polls += 1;
      state.error = null;
      render(summary);
      snaprag.clearError();
      $("updated").textContent =
        `updated ${clockTime(Date.now() / 1000)}, every ${POLL_MS / 1000} s`;
    } catch (e) {
      if (gen !== generation) return;
      state.failures += 1;
      state.error = e.message;
      snaprag.showError(e);
      $("updated").textContent = "not updating";
    }
  }
  timer = setTimeout(() => poll(gen), POLL_MS);
}

function restart() {
  generation += 1;
  clearTimeout(timer);
  poll(generation);
}

// another key may not read what the previous one did: drop everything shown
function forget() {
  for (const c of Object.values(state.charts)) c.destroy();
  Object.assign(state, { summary: null, charts: {}, data: {}, queues: { t: [], lanes: {} } });
  for (const id of ["live", "alerts", "recommendations", "latency-charts", "routes", "stages",
    "cache", "queues"]) fill(id);
  for (const box of document.querySelectorAll(".chart")) box.replaceChildren();
}

function render(s) {
  renderLive(s.live || {}, s.queues || {});
  renderAlerts(s.alerts || []);
  renderRecommendations(s.recommendations || []);
  sampleQueues(s.queues || {});
  renderCharts(s.timeline || { t: [], routes: {} });
  renderRoutes(s.series || {});
  renderStages(s.series || {});
  renderCache(s.counters || {});
  renderQueues(s.queues || {});
}

// ---------------------------------------------------------------- numbers and lists

function renderLive(live, queues) {
  const gib = (mb) => `${(mb / 1024).toFixed(1)} GiB`;
  const num = (v, digits) => (v === undefined || v === null ? "–" : v.toFixed(digits));
  const memory = live.memory_mb === undefined ? "–" : `${live.memory_mb.toFixed(0)} MiB`;
  const stats = [
    ["CPU", live.cpu_percent === undefined ? "–" : `${num(live.cpu_percent, 0)} %`],
    ["Memory", memory, live.memory_total_mb ? `of ${gib(live.memory_total_mb)}` : ""],
    ["Waiting requests", num(live.queue_length, 0)],
    ["Refused (overloaded)", String((queues.resources || {}).refused ?? "–")],
    ["Open files", num(live.open_files, 0)],
    ["Disk free", live.disk_free_mb === undefined ? "–" : gib(live.disk_free_mb)],
  ];
  fill("live", stats.map(([label, value, note]) => el("div", { class: "card stat" },
    el("div", { class: "muted" }, label),
    el("div", { class: "value" }, value, note ? el("small", {}, " ", note) : null),
  )));
}

function renderAlerts(alerts) {
  if (!alerts.length) {
    fill("alerts", el("li", { class: "empty" }, "No active alerts."));
    return;
  }
  fill("alerts", alerts.map((a) => el("li", { class: "alert-firing", "data-alert": a.alert },
    a.message, // says the value when it fired; "now" is the latest evaluation's
    el("small", {}, ` · now ${a.value} · since ${clockTime(a.at)}`),
  )));
}

function renderRecommendations(items) {
  if (!items.length) {
    const why = "None: nothing stands out (the rules speak only after enough traffic).";
    fill("recommendations", el("li", { class: "empty" }, why));
    return;
  }
  fill("recommendations", items.map((r) => el("li", { "data-rule": r.rule },
    el("div", { class: "advice" }, r.advice),
    el("small", {}, `because ${r.because}`),
  )));
}

function renderRoutes(series) {
  const rows = Object.entries(series).filter(([k]) => k.startsWith("route:"));
  if (!rows.length) {
    fill("routes", el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No requests yet.")));
    return;
  }
  fill("routes", rows.map(([key, r]) => el("tr", {},
    el("td", {}, key.slice(6)),
    el("td", { class: "num" }, r.count),
    el("td", { class: "num" }, r.per_s),
    el("td", { class: "num" }, ms(r.p50_ms)),
    el("td", { class: "num" }, ms(r.p95_ms)),
    el("td", { class: "num" }, ms(r.p99_ms)),
    el("td", { class: "num" }, r.errors),
  )));
}

// per operation, its stages by share of summed time (the aggregates "total" and
// "retrieve" contain the others, so they are left out, as in `snaprag report`)
function renderStages(series) {
  const ops = {};
  for (const [key, row] of Object.entries(series)) {
    const m = /^stage:([^.]+)\.(.+)$/.exec(key);
    if (!m || m[2] === "total" || m[2] === "retrieve") continue;
    (ops[m[1]] = ops[m[1]] || []).push({ stage: m[2], ...row, time: row.mean_ms * row.count });
  }
  const names = Object.keys(ops).sort();
  if (!names.length) {
    fill("stages", el("p", { class: "empty" }, "No searches or answers yet."));
    return;
  }
  fill("stages", names.map((op) => {
    const rows = ops[op].sort((a, b) => b.time - a.time);
    const whole = rows.reduce((sum, r) => sum + r.time, 0) || 1;
    return el("table", { "data-operation": op, style: "margin-bottom: 10px" },
      el("thead", {}, el("tr", {}, el("th", {}, op), el("th", { class: "num" }, "mean"),
        el("th", { class: "num" }, "p95"), el("th", { class: "num" }, "share"),
        el("th", { class: "bar-cell" }))),
      el("tbody", {}, rows.map((r) => el("tr", {},
        el("td", {}, r.stage.replace(/_/g, " ")),
        el("td", { class: "num" }, ms(r.mean_ms)),
        el("td", { class: "num" }, ms(r.p95_ms)),
        el("td", { class: "num" }, `${((100 * r.time) / whole).toFixed(1)} %`),
        el("td", { class: "bar-cell" },
          el("div", { class: "bar", style: `width: ${(100 * r.time) / whole}%` })),
      ))));
  }));
}

// counters "cache:NAMESPACE:TIER:hit|miss" -> one row per namespace and tier
function renderCache(counters) {
  const rows = {};
  for (const [key, value] of Object.entries(counters)) {
    const parts = key.split(":");
    if (parts[0] !== "cache" || parts.length !== 4) continue;
    const row = (rows[`${parts[1]} · ${parts[2]}`] ??= { hits: 0, misses: 0 });
    row[parts[3] === "hit" ? "hits" : "misses"] += value;
  }
  const names = Object.keys(rows).sort();
  if (!names.length) {
    fill("cache", el("tr", {}, el("td", { colspan: 4, class: "empty" }, "No look-ups yet.")));
    return;
  }
  fill("cache", names.map((name) => {
    const { hits, misses } = rows[name];
    const rate = hits + misses ? `${((100 * hits) / (hits + misses)).toFixed(1)} %` : "–";
    return el("tr", {}, el("td", {}, name), el("td", { class: "num" }, hits),
      el("td", { class: "num" }, misses), el("td", { class: "num" }, rate));
  }));
}

function renderQueues(queues) {
  const rows = [];
  for (const [lane, q] of Object.entries(queues)) {
    if (lane === "ingest") {
      rows.push(el("tr", {}, el("td", {}, "ingest jobs"), el("td"),
        el("td", { class: "num" }, q.pending_jobs), el("td", { colspan: 6 })));
    } else if (q && q.queue_limit !== undefined) {
      rows.push(el("tr", {}, el("td", {}, lane),
        ...[q.running, q.waiting, q.concurrency, q.queue_limit, q.admitted, q.rejected,
          q.timed_out].map((v) => el("td", { class: "num" }, v)),
        el("td", { class: "num" }, ms(q.mean_wait_ms))));
    }
  }
  fill("queues", rows);
}

// ---------------------------------------------------------------- charts

function width(box) {
  return Math.max(240, box.clientWidth || 400);
}

// draw `data` ([x, ...ys]) in the element `id`; a new set of series makes a new chart
function chart(id, series, data, opts) {
  const box = $(id);
  const o = opts || {};
  const shape = JSON.stringify(series.map((s) => [s.label, s.scale || "y"]));
  let plot = state.charts[id];
  if (plot && plot.shape !== shape) {
    plot.destroy();
    plot = null;
  }
  if (!plot) {
    box.replaceChildren();
    plot = new uPlot({
      width: width(box),
      height: HEIGHT,
      scales: Object.assign({ x: { time: true, range: lastMinutes } }, o.scales || {}),
      axes: [{ space: 70, values: clock }, ...(o.axes || [{ size: 56 }])],
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      series: [{}, ...series.map((s, i) => ({
        label: s.label,
        scale: s.scale || "y",
        stroke: s.color || COLORS[i % COLORS.length],
        width: 1.5,
        dash: s.dash,
        spanGaps: Boolean(s.spanGaps),
        paths: s.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined,
        fill: s.bars ? (s.color || COLORS[i % COLORS.length]) + "66" : undefined,
      }))],
    }, data, box);
    plot.shape = shape;
    state.charts[id] = plot;
  } else {
    plot.setData(data);
  }
  state.data[id] = data;
}

// time ticks as a clock, one line (uPlot's default adds a date line that overlaps in
// narrow charts); seconds only when the ticks are less than a minute apart
function clock(u, splits, axis, space, step) {
  return splits.map((s) => clockTime(s, step < 60));
}

function clockTime(unixSeconds, seconds = true) {
  const opts = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (seconds) opts.second = "2-digit";
  return new Date(unixSeconds * 1000).toLocaleTimeString([], opts);
}

// at most the last 15 minutes, at least one: a young server's data fills the width, and
// a single point still gets a readable time axis
function lastMinutes(u, min, max) {
  const end = max === null || max === undefined ? Date.now() / 1000 : max;
  const start = min === null || min === undefined ? end - 60 : Math.max(min, end - SPAN_S);
  return [Math.min(start, end - 60), end];
}

function renderCharts(tl) {
  const t = tl.t || [];
  const routes = Object.keys(tl.routes || {}).sort();
  chart("chart-throughput", routes.map((r) => ({ label: r })),
    [t, ...routes.map((r) => tl.routes[r].per_s)]);
  chart("chart-hit-rate", [{ label: "hit rate %", spanGaps: true }],
    [t, (tl.hit_rate || []).map((v) => (v === null ? null : 100 * v))],
    { scales: { y: { range: [0, 100] } } });
  renderLatency(t, tl.routes || {});
  chart("chart-rejected", [{ label: "rejected", bars: true, color: "#b42318" }],
    [t, tl.rejected || []]);
  chart("chart-resources", [{ label: "CPU %", scale: "%" }, { label: "memory MiB", scale: "MiB" }],
    [t, tl.cpu_percent || [], tl.memory_mb || []], {
      scales: { "%": { range: [0, 100] } },
      axes: [{ scale: "%", size: 44 }, { scale: "MiB", side: 1, size: 60, grid: { show: false } }],
    });
  const lanes = Object.keys(state.queues.lanes);
  chart("chart-queues", lanes.map((l) => ({ label: l })),
    [state.queues.t, ...lanes.map((l) => state.queues.lanes[l])]);
}

// one chart per route: p50, p95 and p99 over time, on a log scale (a cold first request
// or a slow answer would otherwise flatten everything else against zero)
function renderLatency(t, routes) {
  const box = $("latency-charts");
  const names = Object.keys(routes).sort();
  for (const section of [...box.children]) {
    if (!names.includes(section.dataset.route)) {
      const id = `chart-latency-${section.dataset.route}`;
      if (state.charts[id]) state.charts[id].destroy();
      delete state.charts[id];
      delete state.data[id];
      section.remove();
    }
  }
  for (const name of names) {
    const id = `chart-latency-${name.replace(/[^\w-]/g, "_")}`;
    if (!$(id)) {
      box.append(el("section", { class: "card", "data-route": name },
        el("h2", {}, `Latency of ${name} (ms, log scale)`), el("div", { id, class: "chart" })));
    }
    const r = routes[name];
    chart(id, [
      { label: "p50", spanGaps: true },
      { label: "p95", spanGaps: true, color: "#d9480f" },
      { label: "p99", spanGaps: true, color: "#b42318", dash: [4, 3] },
    ], [t, r.p50_ms, r.p95_ms, r.p99_ms], { scales: { y: { distr: 3, log: 10 } } });
  }
}

// the summary's queues are a snapshot; keep this page's own short history of them
function sampleQueues(queues) {
  const h = state.queues;
  const now = Date.now() / 1000;
  const waiting = {};
  for (const [lane, q] of Object.entries(queues)) {
    if (lane === "ingest") waiting["ingest jobs"] = q.pending_jobs;
    else if (q && q.waiting !== undefined) waiting[lane] = q.waiting;
  }
  for (const lane of Object.keys(waiting)) {
    if (!h.lanes[lane]) h.lanes[lane] = h.t.map(() => null); // a lane seen only now
  }
  h.t.push(now);
  for (const lane of Object.keys(h.lanes)) h.lanes[lane].push(waiting[lane] ?? null);
  if (h.t.length > QUEUE_SAMPLES) {
    h.t.shift();
    for (const lane of Object.keys(h.lanes)) h.lanes[lane].shift();
  }
}

window.addEventListener("resize", () => {
  for (const [id, plot] of Object.entries(state.charts)) {
    plot.setSize({ width: width($(id)), height: HEIGHT });
  }
});
$("window").addEventListener("change", restart);
document.addEventListener("visibilitychange", () => document.hidden || restart());
snaprag.keyForm(() => {
  forget();
  restart();
});
restart();
