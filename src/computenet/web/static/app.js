// computenet dashboard: one page, hash routes (#/network, #/jobs, #/jobs/<id>, #/sites,
// #/sites/<id>, #/totals), data from /web/api with the caller's bearer token.
// All text from the server is set with textContent (never parsed as HTML).
"use strict";

const CN = (window.__cn = window.__cn || {}); // timings and state the tests and bench read
const STATES = ["submitted", "placed", "transferring", "running", "checkpointed",
  "succeeded", "failed", "cancelled"];
const PAGE = 50;
const POLL_MS = window.CN_POLL_MS || 2000;
const TOKEN_KEY = "computenet.token";
let me = null;
let charts = [];
let view = null; // {name, refresh(changes)}
let cursor = null;

// -- small helpers ------------------------------------------------------------------

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function fmtTime(s) {
  if (s === null || s === undefined) return "–";
  return new Date(s * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}
function fmtNum(v, digits = 2) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toLocaleString("en-US", { minimumFractionDigits: digits,
    maximumFractionDigits: digits });
}
function sum(values) { return values.reduce((a, v) => a + (v || 0), 0); }
function stateBadge(s) { return h("span", { class: `state state-${s}` }, s); }

class HttpError extends Error {
  constructor(status, body) {
    // The API's errors are {"error": code, "detail": what and the fix, "fields": [...]}.
    super(body && (body.detail || body.error) ? String(body.detail || body.error) : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (r.status === 401 && me) signOut("Your token is unknown or was revoked: sign in again.");
  if (!r.ok) throw new HttpError(r.status, body);
  return body;
}

function chart(el) {
  const c = echarts.init(el, null, { renderer: "canvas" });
  charts.push(c);
  return c;
}
function disposeCharts() { charts.forEach((c) => c.dispose()); charts = []; }
window.addEventListener("resize", () => charts.forEach((c) => c.resize()));

// -- sign in ------------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  document.getElementById("app").hidden = true;
  document.getElementById("signin").hidden = false;
  document.getElementById("signin-error").textContent = message || "";
}

const prefetched = {}; // path -> promise, asked for at sign-in alongside "me"
function prefetch(path) { prefetched[path] = api(path); prefetched[path].catch(() => {}); }
function fetchOnce(path) {
  const p = prefetched[path];
  delete prefetched[path];
  return p || api(path);
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  // The first view's data is asked for with "me" and the change cursor, not after them.
  const first = (location.hash.replace(/^#\/?/, "").split(/[/?]/)[0]) || "network";
  if (first === "network") prefetch("/web/api/network?hours=48");
  loadMap(window.CN_MAP || "world");
  let changes = null;
  try {
    [me, changes] = await Promise.all([api("/web/api/me"), api("/web/api/changes")]);
  } catch (e) {
    signOut(e.status === 401 ? "Unknown or revoked token." : `Could not sign in: ${e.message}`);
    return;
  }
  document.getElementById("signin").hidden = true;
  document.getElementById("app").hidden = false;
  document.getElementById("who").textContent = `${me.name || me.tenant_id} (${me.role})`;
  // The change cursor is taken no later than any view's data, so a change that lands
  // while a view is loading is still seen by the next poll.
  cursor = changes.cursor;
  if (!location.hash) location.hash = "#/network"; // hashchange routes
  else route();
  startPolling();
}

// -- live updates (polling the audit cursor) ---------------------------------------------

let pollTimer = null;
function startPolling() {
  if (pollTimer) return;
  const tick = async () => {
    pollTimer = null;
    if (!me) return;
    try {
      const first = cursor === null;
      const c = await api(`/web/api/changes${first ? "" : `?since=${cursor}`}`);
      cursor = c.cursor;
      document.getElementById("live").textContent = `live · ${new Date().toISOString().slice(11, 19)} UTC`;
      if (!first && c.jobs.length && view && view.refresh) await view.refresh(c.jobs);
    } catch (e) {
      document.getElementById("live").textContent = "live updates paused";
    }
    if (me && !pollTimer) pollTimer = setTimeout(tick, POLL_MS);
  };
  pollTimer = setTimeout(tick, POLL_MS);
}

// -- routing ------------------------------------------------------------------------

function route() {
  if (!me) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const name = parts[0].split("?")[0] || "network";
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.dataset.view === name);
  }
  disposeCharts();
  // Each route draws into a fresh box: a slower earlier route that finishes late draws
  // into its own box, no longer on the page.
  const main = h("div", { class: "view" });
  document.getElementById("main").replaceChildren(main);
  const views = { network: networkView, jobs: parts[1] && !parts[0].includes("?") ? jobView : jobsView, sites: sitesView,
    totals: totalsView };
  const make = views[name] || networkView;
  // Each view sets its own ctx.refresh: a slow earlier view that finishes late sets the
  // refresh of its own ctx, no longer the current one.
  const ctx = { name };
  view = ctx;
  make(main, parts.slice(1).map(decodeURIComponent), ctx).catch((e) => {
    main.append(h("p", { class: "error" }, e.message));
  });
}
window.addEventListener("hashchange", route);

// -- network map --------------------------------------------------------------------

const mapsLoaded = {};
async function loadMap(kind) {
  if (!mapsLoaded[kind]) {
    mapsLoaded[kind] = fetch(`/dashboard/static/vendor/${kind}.json`).then((r) => r.json())
      .then((geo) => echarts.registerMap(kind, geo));
  }
  return mapsLoaded[kind];
}

function carbonRange(sites) {
  const all = sites.flatMap((s) => s.carbon_g_per_kwh.filter((v) => v !== null));
  return all.length ? [Math.min(...all), Math.max(...all)] : [0, 1];
}

function siteSize(site) { return 8 + 5 * Math.sqrt(site.capacity / 100); }

function mapOption(net, hour) {
  const byId = Object.fromEntries(net.sites.map((s) => [s.id, s]));
  const [lo, hi] = carbonRange(net.sites);
  const points = net.sites.map((s) => ({
    name: s.id,
    value: [s.longitude, s.latitude, s.carbon_g_per_kwh[hour], s.capacity, s.load[hour],
      s.pue, s.price_cny_per_kwh[hour]],
    symbolSize: siteSize(s),
    itemStyle: s.health && !s.health.up ? { borderColor: "#b42318", borderWidth: 3 } : undefined,
  }));
  const links = net.links.filter((l) => byId[l.a] && byId[l.b]).map((l) => ({
    coords: [[byId[l.a].longitude, byId[l.a].latitude], [byId[l.b].longitude, byId[l.b].latitude]],
    link: l,
  }));
  const moves = (net.transfers || []).filter((t) => byId[t.from_site] && byId[t.to_site]).map((t) => ({
    coords: [[byId[t.from_site].longitude, byId[t.from_site].latitude],
      [byId[t.to_site].longitude, byId[t.to_site].latitude]],
    move: t,
  }));
  const china = net.map === "china";
  return {
    animation: false,
    tooltip: {
      trigger: "item",
      formatter: (p) => {
        if (p.seriesName === "sites") {
          const s = byId[p.name];
          const v = p.value;
          return [`${s.name} (${s.id})`, `${s.province} · ${s.hub || ""}`,
            `carbon ${fmtNum(v[2], 0)} gCO2/kWh · price ${fmtNum(v[6], 3)} CNY/kWh`,
            `planned load ${fmtNum(v[4], 1)} of ${s.capacity} accelerators · PUE ${s.pue}`]
            .map((t) => echarts.format.encodeHTML(t)).join("<br>");
        }
        if (p.data && p.data.link) {
          const l = p.data.link;
          return echarts.format.encodeHTML(`${l.a} – ${l.b}: ${l.rtt_ms} ms RTT (${l.kind}), ${l.bandwidth_gbps} Gbit/s`);
        }
        if (p.data && p.data.move) {
          const m = p.data.move;
          return echarts.format.encodeHTML(`${m.dataset_id}: ${m.size_gb} GB ${m.from_site} → ${m.to_site}`);
        }
        return "";
      },
    },
    visualMap: {
      type: "continuous", seriesIndex: 2, dimension: 2, min: Math.floor(lo), max: Math.ceil(hi) + 1,
      text: ["gCO2/kWh", ""], calculable: false, left: 10, bottom: 10,
      inRange: { color: ["#1a9850", "#fee08b", "#d73027"] },
    },
    geo: {
      map: net.map, roam: true,
      center: china ? [105, 36] : undefined, zoom: china ? 1.15 : 1.1,
      itemStyle: { areaColor: "#eef1f4", borderColor: "#aab3bf" },
      // A province's own name (Chinese on the China map) shows when pointed at.
      emphasis: { itemStyle: { areaColor: "#dde4ec" }, label: { show: true, color: "#555" } },
      label: { show: false },
    },
    series: [
      { name: "links", type: "lines", coordinateSystem: "geo", data: links, silent: false,
        lineStyle: { color: "#5b6b82", width: 1.2, opacity: 0.6, curveness: 0.15 }, z: 1 },
      { name: "data moved", type: "lines", coordinateSystem: "geo", data: moves,
        lineStyle: { color: "#1f6feb", width: 2, opacity: 0.8, curveness: 0.25 },
        effect: { show: false }, symbol: ["none", "arrow"], z: 2 },
      { name: "sites", type: "scatter", coordinateSystem: "geo", data: points, z: 3,
        label: { show: true, formatter: "{b}", position: "right", fontSize: 10, color: "#333" },
        itemStyle: { borderColor: "#fff", borderWidth: 1 } },
    ],
  };
}

function siteTable(net, hour, onPick) {
  return h("table", { id: "site-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "site"), h("th", {}, "province"),
      h("th", { class: "num" }, "carbon gCO2/kWh"), h("th", { class: "num" }, "price CNY/kWh"),
      h("th", { class: "num" }, `planned load (${net.load_scope})`), h("th", { class: "num" }, "capacity"),
      h("th", { class: "num" }, "PUE"), h("th", {}, "executor"))),
    h("tbody", {}, net.sites.map((s) => h("tr", { class: "clickable", "data-site": s.id, onclick: () => onPick(s.id) },
      h("td", {}, `${s.name} (${s.id})`), h("td", {}, s.province),
      h("td", { class: "num" }, fmtNum(s.carbon_g_per_kwh[hour], 0)),
      h("td", { class: "num" }, fmtNum(s.price_cny_per_kwh[hour], 3)),
      h("td", { class: "num" }, fmtNum(s.load[hour], 1)),
      h("td", { class: "num" }, s.capacity), h("td", { class: "num" }, s.pue),
      h("td", {}, s.health ? `${s.health.kind} ${s.health.up ? "up" : "DOWN"}` : s.executor)))));
}

async function networkView(main, _args, ctx) {
  const t0 = performance.now();
  const net = await fetchOnce("/web/api/network?hours=48");
  await loadMap(net.map);
  let hour = 0;
  const mapEl = h("div", { id: "map", "data-map": net.map });
  const label = h("span", { id: "hour-label" });
  const slider = h("input", { id: "hour", type: "range", min: 0, max: Math.max(0, net.hours - 1), value: 0 });
  const tableBox = h("div", {});
  const detail = h("div", { class: "chart", id: "site-series" });
  const detailTitle = h("h3", {}, "Pick a site for its next 48 hours");
  main.append(
    h("div", { class: "card" },
      h("h2", {}, `Network ${net.network} `, h("span", { class: "muted" }, `(${net.sites.length} sites, ${net.map} map; colour: carbon now, size: capacity)`)),
      h("div", { class: "slider" }, h("span", {}, "time"), slider, label),
      mapEl),
    h("div", { class: "row" },
      h("div", { class: "card grow" }, detailTitle, detail),
      h("div", { class: "card grow" }, h("h3", {}, "Jobs by state"),
        h("p", {}, STATES.filter((s) => net.states[s]).map((s) => h("span", {}, stateBadge(s), ` ${net.states[s]}  `))))),
    h("div", { class: "card" }, tableBox));
  const map = chart(mapEl);
  let sc = null;
  const pick = (id) => {
    const s = net.sites.find((x) => x.id === id);
    detailTitle.textContent = `${s.name} (${s.id}): next ${net.hours} h`;
    if (!sc) sc = chart(detail);
    sc.setOption(siteSeriesOption(net, s, hour), true);
  };
  const draw = () => {
    label.textContent = `+${hour} h · ${fmtTime(net.start_s + hour * net.step_s)}`;
    map.setOption(mapOption(net, hour), true);
    tableBox.replaceChildren(siteTable(net, hour, pick));
  };
  map.on("finished", () => {
    if (!mapEl.dataset.drawn) {
      mapEl.dataset.drawn = "1";
      mapEl.dataset.sites = String(net.sites.length);
      CN.mapDrawnMs = performance.now();
      CN.mapViewMs = performance.now() - t0;
    }
  });
  map.on("click", (p) => { if (p.seriesName === "sites") pick(p.name); });
  slider.addEventListener("input", () => { hour = Number(slider.value); draw(); });
  draw();
  if (net.sites.length) {  // start with the busiest site over the window
    const busiest = net.sites.reduce((a, b) => (sum(b.load) > sum(a.load) ? b : a));
    pick(busiest.id);
  }
  ctx.refresh = async () => {
    const fresh = await api("/web/api/network?hours=48");
    Object.assign(net, fresh);
    draw();
  };
}

function siteSeriesOption(net, s, hour) {
  const xs = s.load.map((_, k) => fmtTime(net.start_s + k * net.step_s).slice(5, 16));
  return {
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 50, right: 50, top: 30, bottom: 30 },
    xAxis: { type: "category", data: xs },
    // The load axis always reaches the capacity, so the capacity line is on the chart.
    yAxis: [{ type: "value", name: "accelerators", max: (v) => Math.max(v.max, s.capacity) },
      { type: "value", name: "gCO2 · CNY×100", position: "right" }],
    series: [
      { name: `planned load (${net.load_scope})`, type: "bar", data: s.load, itemStyle: { color: "#8fb3e8" },
        markLine: { symbol: "none", data: [{ yAxis: s.capacity, name: "capacity" }, { xAxis: hour }],
          label: { formatter: (p) => (p.name === "capacity" ? "capacity" : "") } } },
      { name: "carbon gCO2/kWh", type: "line", yAxisIndex: 1, data: s.carbon_g_per_kwh, showSymbol: false, color: "#d73027" },
      { name: "price CNY/kWh ×100", type: "line", yAxisIndex: 1, showSymbol: false, color: "#1a9850",
        data: s.price_cny_per_kwh.map((v) => (v === null ? null : v * 100)) },
    ],
  };
}

// -- jobs table ---------------------------------------------------------------------

async function jobsView(main, _args, ctx) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const f = { state: params.get("state") || "", tenant: params.get("tenant") || "",
    site: params.get("site") || "", q: params.get("q") || "", offset: Number(params.get("offset") || 0) };
  const net = await api("/web/api/network?hours=1");
  const sel = (id, options, value) => h("select", { id }, h("option", { value: "" }, "any"),
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
  const stateSel = sel("f-state", STATES.map((s) => [s, s]), f.state);
  const tenantSel = sel("f-tenant", me.tenants.map((t) => [t.id, t.name]), f.tenant);
  const siteSel = sel("f-site", net.sites.map((s) => [s.id, s.id]), f.site);
  const text = h("input", { id: "f-q", type: "search", placeholder: "name or id", value: f.q });
  const info = h("span", { id: "jobs-info", class: "muted" });
  const prev = h("button", { id: "prev", type: "button" }, "‹ newer");
  const next = h("button", { id: "next", type: "button" }, "older ›");
  const body = h("tbody", {});
  const table = h("table", { id: "jobs-table" },
    h("thead", {}, h("tr", {}, ["job", "state", "tenant", "site", "start", "end"].map((c) => h("th", {}, c)),
      h("th", { class: "num" }, "cost CNY"), h("th", { class: "num" }, "carbon kg"))), body);
  main.append(h("div", { class: "card" },
    h("div", { class: "filters" }, "state", stateSel, me.role === "admin" ? ["tenant", tenantSel] : null,
      "site", siteSel, text, prev, next, info),
    table,
    h("p", { class: "muted" }, "Cost and carbon are modelled by the engine when the job is placed.")));

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    table.dataset.ready = "";
    const qs = new URLSearchParams({ limit: PAGE, offset: f.offset });
    for (const k of ["state", "tenant", "site", "q"]) if (f[k]) qs.set(k, f[k]);
    const page = await api(`/web/api/jobs?${qs}`);
    if (mine !== seq) return;
    body.replaceChildren(...page.items.map((j) => h("tr", { class: "clickable", "data-job": j.id,
      onclick: () => { location.hash = `#/jobs/${encodeURIComponent(j.id)}`; } },
      h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.name), h("br"), h("span", { class: "muted code" }, j.id)),
      h("td", { class: "job-state" }, stateBadge(j.state)), h("td", {}, j.tenant_name || j.tenant_id),
      h("td", {}, j.site_id || "–"), h("td", {}, fmtTime(j.start_s)), h("td", {}, fmtTime(j.end_s)),
      h("td", { class: "num" }, fmtNum(j.cost_cny)), h("td", { class: "num" }, fmtNum(j.carbon_kg)))));
    const end = Math.min(page.total, f.offset + page.items.length);
    info.textContent = page.total ? `${f.offset + 1}–${end} of ${page.total}` : "no jobs match";
    prev.disabled = f.offset === 0;
    next.disabled = end >= page.total;
    table.dataset.ready = "1";
    table.dataset.total = String(page.total);
    if (CN.jobsReadyMs === undefined) CN.jobsReadyMs = performance.now();
  };
  const apply = () => {
    f.state = stateSel.value; f.tenant = tenantSel.value; f.site = siteSel.value; f.q = text.value.trim();
    f.offset = 0;
    load();
  };
  let debounce = null;
  for (const el of [stateSel, tenantSel, siteSel]) el.addEventListener("change", apply);
  text.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(apply, 250); });
  prev.addEventListener("click", () => { f.offset = Math.max(0, f.offset - PAGE); load(); });
  next.addEventListener("click", () => { f.offset += PAGE; load(); });
  ctx.refresh = async (changed) => {
    const shown = new Set([...body.querySelectorAll("tr")].map((tr) => tr.dataset.job));
    if (f.offset === 0 || changed.some((c) => shown.has(c.id))) await load();
  };
  await load();
  datasetsCard(main);
}

async function datasetsCard(main) {
  const data = await api("/web/api/datasets");
  main.append(h("div", { class: "card" }, h("h3", {}, me.role === "admin" ? "Datasets" : "Your datasets"),
    data.items.length ? h("table", { id: "datasets" },
      h("thead", {}, h("tr", {}, ["dataset", "class", "home", "GB", "may go", "law"].map((c) => h("th", {}, c)))),
      h("tbody", {}, data.items.map((d) => h("tr", {}, h("td", {}, `${d.name} (${d.id})`), h("td", {}, d.classification),
        h("td", {}, d.home_site), h("td", {}, fmtNum(d.size_gb, 1)), h("td", {}, d.rule.may_go),
        h("td", { class: "muted" }, d.rule.source)))))
      : h("p", { class: "muted" }, "no datasets")));
}

// -- one job ------------------------------------------------------------------------

async function jobView(main, [jobId], ctx) {
  const box = h("div", { id: "job" });
  main.append(box);
  const render = async () => {
    const j = await api(`/web/api/jobs/${encodeURIComponent(jobId)}`);
    disposeCharts();
    box.replaceChildren(...jobParts(j));
    const x = j.explanation || {};
    if (x.breakdown) {
      const b = x.breakdown;
      chart(document.getElementById("cost-chart")).setOption({
        animation: false, tooltip: {}, grid: { left: 70, right: 20, top: 10, bottom: 25 },
        xAxis: { type: "value", name: "CNY" },
        yAxis: { type: "category", data: ["energy", "compute", "transfer"] },
        series: [{ type: "bar", data: [b.energy_cost_cny, b.compute_cost_cny, b.transfer_cost_cny],
          itemStyle: { color: "#1f6feb" } }],
      });
    }
    timelineChart(j);
    box.dataset.state = j.state;
  };
  ctx.refresh = async (changed) => { if (changed.some((c) => c.id === jobId)) await render(); };
  await render();
}

/** The job's life on one time axis: waiting (submitted to start), the run (start to end),
 * its transfers, with now and the deadline marked. Times are UTC. */
function timelineChart(j) {
  const el = document.getElementById("timeline-chart");
  if (!el) return;
  const x = j.explanation || {};
  const bars = [];
  if (j.start_s) bars.push(["waits", j.created_s, j.start_s, "#c7d0db"]);
  for (const t of x.transfers || []) bars.push([`copies ${t.dataset_id}`, t.start_s, t.end_s, "#f0b429"]);
  if (j.start_s && j.end_s) bars.push([`runs at ${j.site_id}`, j.start_s, j.end_s, "#1f6feb"]);
  if (!bars.length) { el.replaceChildren(h("p", { class: "muted" }, `submitted ${fmtTime(j.created_s)}; not placed yet`)); return; }
  const now = Date.now() / 1000;
  const lines = [{ xAxis: now * 1000, name: "now" }];
  if (j.deadline_s) lines.push({ xAxis: j.deadline_s * 1000, name: "deadline" });
  chart(el).setOption({
    animation: false,
    grid: { left: 170, right: 40, top: 10, bottom: 25 },
    tooltip: { formatter: (p) => echarts.format.encodeHTML(`${p.data.name}: ${fmtTime(p.data.value[1] / 1000)} → ${fmtTime(p.data.value[2] / 1000)}`) },
    xAxis: { type: "time", min: Math.min(j.created_s, ...bars.map((b) => b[1])) * 1000,
      max: Math.max(j.deadline_s || 0, now, ...bars.map((b) => b[2])) * 1000 },
    yAxis: { type: "category", data: bars.map((b) => b[0]), inverse: true,
      axisLabel: { width: 160, overflow: "truncate" } },
    series: [{
      type: "custom",
      renderItem: (params, api) => {
        const lane = api.value(0);
        const a = api.coord([api.value(1), lane]);
        const b = api.coord([api.value(2), lane]);
        const height = api.size([0, 1])[1] * 0.5;
        return { type: "rect", shape: { x: a[0], y: a[1] - height / 2, width: Math.max(2, b[0] - a[0]), height },
          style: { fill: bars[params.dataIndex][3] } };
      },
      encode: { x: [1, 2], y: 0 },
      data: bars.map((b, k) => ({ name: b[0], value: [k, b[1] * 1000, b[2] * 1000] })),
      markLine: { symbol: "none", data: lines, label: { formatter: "{b}" }, lineStyle: { color: "#b42318" } },
    }],
  });
}

function jobParts(j) {
  const x = j.explanation || {};
  const b = x.breakdown;
  const reasons = window.cnReasons.decision(j);
  const alts = window.cnReasons.alternatives(j);
  const transfers = x.transfers || [];
  return [
    h("p", {}, h("a", { href: "#/jobs" }, "‹ all jobs")),
    h("div", { class: "card" },
      h("h2", {}, j.name, " ", h("span", { id: "job-state" }, stateBadge(j.state))),
      h("dl", { class: "kv" },
        h("dt", {}, "id"), h("dd", { class: "code" }, j.id),
        h("dt", {}, "tenant"), h("dd", {}, j.tenant_name || j.tenant_id),
        h("dt", {}, "where"), h("dd", { id: "job-site" }, j.site_id ? `${j.site_id} · ${j.accelerators} × ${j.accelerator || "?"}` : "not placed"),
        h("dt", {}, "when"), h("dd", {}, `${fmtTime(j.start_s)} → ${fmtTime(j.end_s)}`),
        h("dt", {}, "deadline"), h("dd", {}, fmtTime(j.deadline_s)),
        h("dt", {}, "executor"), h("dd", {}, j.executor || "–"))),
    h("div", { class: "row" },
      h("div", { class: "card grow" }, h("h3", {}, "Why here"),
        x.policy ? h("p", { class: "muted" }, `policy ${x.policy}`) : null,
        h("ul", { class: "reasons", id: "reasons" }, reasons.length
          ? reasons.map((r) => h("li", {}, h("span", { class: "code" }, r.code), " ", r.message))
          : h("li", { class: "muted" }, "not planned yet"))),
      h("div", { class: "card grow" }, h("h3", {}, "Cost and carbon (modelled)"),
        b ? h("dl", { class: "kv", id: "breakdown" },
          h("dt", {}, "cost"), h("dd", {}, `${fmtNum(b.cost_cny)} CNY (energy ${fmtNum(b.energy_cost_cny)}, compute ${fmtNum(b.compute_cost_cny)}, transfer ${fmtNum(b.transfer_cost_cny)})`),
          h("dt", {}, "carbon"), h("dd", {}, `${fmtNum(b.carbon_kg)} kg CO2`),
          h("dt", {}, "energy"), h("dd", {}, `${fmtNum(b.energy_kwh, 1)} kWh`),
          h("dt", {}, "objective"), h("dd", {}, `${fmtNum(b.objective_cny)} CNY`)) : h("p", { class: "muted" }, "no placement yet"),
        h("div", { id: "cost-chart", style: "height:120px" }))),
    h("div", { class: "card" }, h("h3", {}, "Alternatives it beat"),
      alts.length ? h("table", { id: "alternatives" },
        h("thead", {}, h("tr", {}, h("th", {}, "site"), h("th", {}, "start"), h("th", { class: "num" }, "objective CNY"),
          h("th", { class: "num" }, "worse by CNY"), h("th", {}, "why not"))),
        h("tbody", {}, alts.map((a) => h("tr", {}, h("td", {}, a.site_id), h("td", {}, fmtTime(a.start_s)),
          h("td", { class: "num" }, fmtNum(a.objective_cny)), h("td", { class: "num" }, fmtNum(a.by_cny)),
          h("td", { class: "wrap" }, h("span", { class: "code" }, a.code), " ", a.message)))))
        : h("p", { class: "muted" }, "none recorded")),
    h("div", { class: "row" },
      h("div", { class: "card grow" }, h("h3", {}, "Data rules"),
        j.datasets_detail.length ? h("table", { id: "data-rules" },
          h("thead", {}, h("tr", {}, ["dataset", "class", "home", "may go", "MLPS elsewhere", "law"].map((c) => h("th", {}, c)))),
          h("tbody", {}, j.datasets_detail.map((d) => h("tr", {}, h("td", {}, `${d.name} (${d.size_gb} GB)`),
            h("td", {}, d.classification + (d.classification === "personal" ? `, ${d.individuals} people${d.sensitive ? ", sensitive" : ""}${d.export_cleared ? ", export cleared" : ""}` : "")),
            h("td", {}, d.home_site), h("td", {}, d.rule.may_go), h("td", {}, `≥ ${d.rule.min_security_level}`),
            h("td", { class: "muted wrap" }, d.rule.source)))))
          : h("p", { class: "muted" }, "no datasets")),
      h("div", { class: "card grow" }, h("h3", {}, "Data moved"),
        transfers.length ? h("table", { id: "transfers" },
          h("thead", {}, h("tr", {}, ["dataset", "from", "to", "GB", "window", "CNY"].map((c) => h("th", {}, c)))),
          h("tbody", {}, transfers.map((t) => h("tr", {}, h("td", {}, t.dataset_id), h("td", {}, t.from_site),
            h("td", {}, t.to_site), h("td", {}, fmtNum(t.size_gb, 1)), h("td", {}, `${fmtTime(t.start_s)} → ${fmtTime(t.end_s)}`),
            h("td", {}, fmtNum(t.cost_cny))))))
          : h("p", { class: "muted" }, "nothing moved"))),
    h("div", { class: "card" }, h("h3", {}, "Timeline"),
      h("div", { id: "timeline-chart", style: "height:110px" }),
      h("ol", { class: "timeline", id: "timeline" }, j.history.map((e) => h("li", {}, `${fmtTime(e.at_s)} · ${e.action}`,
        e.detail && e.detail.new ? ` ${e.detail.old} → ${e.detail.new}` : "", ` · by ${e.actor}`)))),
  ];
}

// -- sites --------------------------------------------------------------------------

async function sitesView(main, [siteId]) {
  const net = await api("/web/api/network?hours=48");
  const list = h("div", { class: "card" });
  main.append(list);
  if (!net.sites.length) {
    list.append(h("p", { class: "muted" }, me.role === "provider"
      ? "No sites yet: a provider's sites are those it posts signals for (PUT /v1/sites/{id}/signals)."
      : "This network has no sites."));
    return;
  }
  list.append(h("h2", {}, "Sites"), h("table", { id: "sites-table" },
    h("thead", {}, h("tr", {}, ["site", "hub", "executor", "health", "last heartbeat", "capacity", "PUE"].map((c) => h("th", {}, c)))),
    h("tbody", {}, net.sites.map((s) => h("tr", { class: "clickable", "data-site": s.id,
      onclick: () => { location.hash = `#/sites/${encodeURIComponent(s.id)}`; } },
      h("td", {}, `${s.name} (${s.id})`), h("td", {}, s.hub),
      h("td", {}, s.health ? s.health.kind : s.executor),
      h("td", {}, s.health ? (s.health.up ? "up" : `DOWN: ${s.health.message || ""}`) : "no heartbeat yet"),
      h("td", {}, s.health ? fmtTime(s.health.last_heartbeat_s) : "–"),
      h("td", {}, Object.entries(s.accelerators).map(([k, v]) => `${v} ${k}`).join(", ")),
      h("td", {}, s.pue))))));
  const s = net.sites.find((x) => x.id === siteId)
    || net.sites.reduce((a, b) => (sum(b.load) > sum(a.load) ? b : a));
  const el = h("div", { class: "chart", id: "site-chart", style: "height:320px" });
  main.append(h("div", { class: "card" }, h("h3", {}, `${s.name} (${s.id}): signals and planned load against capacity, next ${net.hours} h`), el));
  chart(el).setOption(siteSeriesOption(net, s, 0));
}

// -- totals and audit -----------------------------------------------------------------

async function totalsView(main) {
  const t = await api("/web/api/totals?days_back=7&days_ahead=2");
  const xs = t.cost_cny.map((_, k) => fmtTime(t.start_s + k * t.step_s).slice(5, 16));
  const nowIdx = Math.floor((t.now_s - t.start_s) / t.step_s);
  main.append(h("div", { class: "card" }, h("h2", {}, `Totals (${t.scope}, modelled)`),
    h("p", { id: "totals-sum" }, `Last 7 days and the next 2: ${fmtNum(t.sum.cost_cny)} CNY, ${fmtNum(t.sum.carbon_kg)} kg CO2, ${fmtNum(t.sum.energy_kwh, 0)} kWh over ${t.sum.jobs} jobs; capacity ${t.capacity} accelerators.`),
    h("p", { class: "muted" }, `Baseline: ${t.baseline_note}.`)));
  const row = h("div", { class: "row" });
  main.append(row);
  const panels = [["cost CNY per hour", t.cost_cny, "#1f6feb"], ["carbon kg per hour", t.carbon_kg, "#d73027"],
    ["energy kWh per hour", t.energy_kwh, "#b08900"], ["utilisation", t.utilisation, "#1a9850"]];
  for (const [name, data, color] of panels) {
    const el = h("div", { class: "chart" });
    row.append(h("div", { class: "card grow" }, h("h3", {}, name), el));
    chart(el).setOption({ animation: false, tooltip: { trigger: "axis" }, grid: { left: 60, right: 20, top: 10, bottom: 30 },
      xAxis: { type: "category", data: xs }, yAxis: { type: "value" },
      series: [{ type: "line", data, showSymbol: false, color, areaStyle: { opacity: 0.15 },
        markLine: { symbol: "none", data: [{ xAxis: nowIdx }], label: { formatter: "now" } } }] });
  }
  // The audit log, searchable.
  const q = h("input", { id: "audit-q", type: "search", placeholder: "action, object or actor" });
  const tbody = h("tbody", {});
  const more = h("button", { type: "button", id: "audit-more" }, "older");
  main.append(h("div", { class: "card" }, h("h2", {}, "Audit log"), h("div", { class: "filters" }, q),
    h("table", { id: "audit" }, h("thead", {}, h("tr", {}, ["when", "actor", "action", "object", "detail"].map((c) => h("th", {}, c)))), tbody), more));
  let offset = 0;
  const load = async (append) => {
    const qs = new URLSearchParams({ limit: PAGE, offset });
    if (q.value.trim()) qs.set("q", q.value.trim());
    const page = await api(`/web/api/audit?${qs}`);
    const rows = page.items.map((a) => h("tr", {}, h("td", {}, fmtTime(a.at_s)), h("td", {}, a.actor),
      h("td", {}, a.action), h("td", { class: "code" }, a.object_id), h("td", { class: "muted" }, JSON.stringify(a.detail))));
    if (append) tbody.append(...rows); else tbody.replaceChildren(...rows);
    more.disabled = page.items.length < PAGE;
  };
  let debounce = null;
  q.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => { offset = 0; load(false); }, 250); });
  more.addEventListener("click", () => { offset += PAGE; load(true); });
  await load(false);
}

// -- start --------------------------------------------------------------------------

document.getElementById("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  signIn(document.getElementById("token").value.trim());
});
document.getElementById("signout").addEventListener("click", () => signOut(""));
if (sessionStorage.getItem(TOKEN_KEY)) signIn(sessionStorage.getItem(TOKEN_KEY));
else signOut("");
