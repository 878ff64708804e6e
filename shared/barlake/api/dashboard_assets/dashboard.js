/* Barlake dashboard: plain JS over the API's own JSON endpoints (no framework, no build step).
 *
 * Pages (hash routes, so the server serves one file):
 *   #/                               lake overview, latest run, symbol table
 *   #/symbol/MSFT?interval=1wk&adjust=total   chart, profile, restatements, quarantine
 *   #/run/RUN_ID                     one run
 * Every data call carries the X-API-Key the user gave (sessionStorage, this tab only) when the
 * API answers 401. Numbers are rendered from the API's values as they are (data-value keeps
 * the raw number, so tests compare it with the API).
 */
"use strict";

const INTERVALS = [["1d", "Daily"], ["1wk", "Weekly"], ["1mo", "Monthly"]];
const ADJUSTMENTS = [["split", "Split-adjusted"], ["total", "Total return"], ["none", "As traded"]];
const KEY_STORE = "barlake.apiKey";
const nf = new Intl.NumberFormat("en-US");
const pf = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

const $ = (sel, root = document) => root.querySelector(sel);
let symbolsCache = null;
let chart = null;

class ApiFailure extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers["X-API-Key"] = key;
  const res = await fetch(path, { headers });
  if (res.status === 401) {
    askForKey(Boolean(key));
    throw new ApiFailure(401, "this API needs a key");
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const msg = body && body.error ? body.error.message : `HTTP ${res.status}`;
    throw new ApiFailure(res.status, msg);
  }
  return body;
}

function askForKey(wrong) {
  const form = $("#key-form");
  form.hidden = false;
  if (wrong) sessionStorage.removeItem(KEY_STORE);
  $("#key-input").focus();
}

/* ---------------------------------------------------------------- tiny DOM helpers */

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const num = (v) => (v === null || v === undefined ? "—" : nf.format(v));
const price = (v) => (v === null || v === undefined ? "—" : pf.format(v));

function bytes(v) {
  if (v === null || v === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let x = v, i = 0;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i += 1; }
  return i === 0 ? `${v} B` : `${x.toFixed(1)} ${units[i]}`;
}

function tile(id, label, value, shown, tone) {
  return el("div", { class: `tile ${tone || ""}`, id: `tile-${id}` },
    el("dt", { text: label }), el("dd", { "data-value": value, text: shown }));
}

function table(id, caption, columns, rows) {
  const head = el("tr", {}, columns.map(([label, cls]) => el("th", { scope: "col", class: cls, text: label })));
  return el("div", { class: "scroll" },
    el("table", { id }, el("caption", { text: caption }), el("thead", {}, head), el("tbody", {}, rows)));
}

function setMain(...children) {
  const main = $("#main");
  main.replaceChildren(...children);
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

/* ---------------------------------------------------------------- data */

async function allSymbols() {
  if (symbolsCache) return symbolsCache;
  let after = null, totals = null;
  const symbols = [];
  do {
    const page = await api(`/v1/symbols?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    totals = page.totals;
    symbols.push(...page.symbols);
    after = page.next_after;
  } while (after);
  symbolsCache = { totals, symbols };
  const list = $("#symbol-list");
  list.replaceChildren(...symbols.map((s) => el("option", { value: s.symbol })));
  return symbolsCache;
}

function failuresByKind(run) {
  const kinds = {};
  for (const e of run.errors || []) kinds[e.kind] = (kinds[e.kind] || 0) + 1;
  return kinds;
}

/* ---------------------------------------------------------------- overview */

function runSection(run) {
  const kinds = failuresByKind(run);
  const state = run.complete ? "complete" : "incomplete";
  const pct = run.batches_expected ? Math.round((100 * run.batches_done) / run.batches_expected) : 100;
  const errRows = (run.errors || []).map((e) => el("tr", {},
    el("td", {}, el("a", { href: `#/symbol/${encodeURIComponent(e.symbol)}`, text: e.symbol })),
    el("td", { class: "text", text: e.kind }),
    el("td", { text: e.retryable ? "yes" : "no" }),
    el("td", { class: "text", text: e.message })));
  return el("section", { id: "run", "aria-labelledby": "run-h", "data-run-id": run.run_id },
    el("h2", { id: "run-h" }, "Run ", el("a", { href: `#/run/${encodeURIComponent(run.run_id)}`, id: "run-id", text: run.run_id }),
      " ", el("span", { class: `badge ${state}`, id: "run-state", text: state })),
    el("p", { class: "muted" }, `${run.kind} · started ${run.created_at || "?"} · `,
      el("span", { id: "run-batches", text: `${run.batches_done}/${run.batches_expected} batches (${pct}%)` })),
    el("progress", { max: run.batches_expected || 1, value: run.batches_done, "aria-label": "batches done" }),
    el("dl", { class: "tiles" },
      tile("run-symbols", "symbols", run.symbols, num(run.symbols)),
      tile("run-ok", "new bars", run.counts.ok, num(run.counts.ok), "good"),
      tile("run-unchanged", "unchanged", run.counts.unchanged, num(run.counts.unchanged)),
      tile("run-restated", "restated (healed)", run.counts.restated, num(run.counts.restated), run.counts.restated ? "warn" : ""),
      tile("run-failed", "failed", run.counts.failed, num(run.counts.failed), run.counts.failed ? "bad" : ""),
      tile("run-rows", "rows written", run.rows_written, num(run.rows_written)),
      tile("run-quarantined", "rows quarantined", run.rows_quarantined, num(run.rows_quarantined), run.rows_quarantined ? "warn" : "")),
    Object.keys(kinds).length
      ? el("p", { id: "run-kinds" }, "Failures by kind: ",
        Object.entries(kinds).map(([k, n]) => el("span", { class: "badge failed", "data-kind": k, text: `${k} ${n}` }, " ")))
      : el("p", { id: "run-kinds", class: "muted", text: "No failures." }),
    errRows.length ? table("run-errors", "Failed symbols", [["symbol"], ["kind", "text"], ["retryable"], ["message", "text"]], errRows) : null);
}

async function overview() {
  document.title = "Barlake dashboard";
  const [inv, run] = await Promise.all([
    allSymbols(),
    api("/v1/runs/latest").catch((e) => (e.status === 404 ? null : Promise.reject(e))),
  ]);
  const t = inv.totals;
  const restated = run ? run.counts.restated : 0;
  const rows = inv.symbols.map((s) => el("tr", { "data-symbol": s.symbol },
    el("td", {}, el("a", { href: `#/symbol/${encodeURIComponent(s.symbol)}`, text: s.symbol })),
    el("td", { class: "text", text: s.exchange || "?" }),
    el("td", { text: s.first_date || "—" }),
    el("td", { text: s.last_date || "—" }),
    el("td", { "data-value": s.rows, text: num(s.rows) }),
    el("td", { "data-value": s.staleness_sessions ?? "" },
      num(s.staleness_sessions), " ", el("span", { class: `badge ${s.stale ? "stale" : "fresh"}`, text: s.stale ? "stale" : "fresh" })),
    el("td", { "data-value": s.gap_count, text: num(s.gap_count) }),
    el("td", { "data-value": s.quarantined, text: num(s.quarantined) })));
  const filter = el("input", {
    type: "search", id: "table-filter", placeholder: "Filter symbols", "aria-label": "Filter the symbol table",
    oninput: (ev) => {
      const q = ev.target.value.trim().toUpperCase();
      for (const tr of document.querySelectorAll("#symbols-table tbody tr")) tr.hidden = !tr.dataset.symbol.includes(q);
    },
  });
  setMain(
    el("h1", { text: "Lake overview" }),
    el("dl", { class: "tiles", id: "totals" },
      tile("symbols", "symbols", t.symbols, num(t.symbols)),
      tile("rows", "daily bars", t.rows, num(t.rows)),
      tile("bytes", "storage", t.bytes, bytes(t.bytes)),
      tile("stale", "stale (> 1 session behind)", t.stale, num(t.stale), t.stale ? "warn" : "good"),
      tile("gaps", "symbols with gaps", t.with_gaps, num(t.with_gaps), t.with_gaps ? "warn" : "good"),
      tile("quarantined", "quarantined rows", t.quarantined, num(t.quarantined), t.quarantined ? "warn" : ""),
      tile("restated", "restated in latest run", restated, num(restated), restated ? "warn" : ""),
      tile("oldest", "oldest last bar", t.oldest_last_date || "", t.oldest_last_date ? `${t.oldest_last_date} (${t.oldest_symbol})` : "—")),
    run ? runSection(run) : el("p", { id: "run", class: "muted", text: "No run yet." }),
    el("h2", { id: "symbols-h", text: "Symbols" }),
    el("div", { class: "toolbar" }, filter),
    table("symbols-table", `${nf.format(inv.symbols.length)} symbols; freshness in exchange sessions behind`,
      [["symbol"], ["exchange", "text"], ["first bar"], ["last bar"], ["rows"], ["sessions behind"], ["gaps"], ["quarantined"]], rows));
}

async function runPage(runId) {
  document.title = `Run ${runId} · Barlake`;
  const run = await api(`/v1/runs/${encodeURIComponent(runId)}`);
  setMain(el("p", {}, el("a", { href: "#/", text: "← Overview" })), runSection(run));
}

/* ---------------------------------------------------------------- symbol page */

function switches(name, options, current, onPick) {
  return el("fieldset", { class: "group", id: `${name}-switch` },
    el("legend", { text: name }),
    options.map(([value, label]) => el("button", {
      type: "button", [`data-${name}`]: value, "aria-pressed": value === current ? "true" : "false",
      onclick: () => onPick(value),
    }, label)));
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function drawChart(box, bars) {
  const LWC = window.LightweightCharts;
  if (!LWC) {
    box.replaceChildren(el("p", { class: "error", text: "The chart library is not installed (npm ci)." }));
    return;
  }
  if (chart) { chart.remove(); chart = null; }
  chart = LWC.createChart(box, {
    autoSize: true,
    layout: { background: { color: css("--card") }, textColor: css("--fg") },
    grid: { vertLines: { color: css("--line") }, horzLines: { color: css("--line") } },
    timeScale: { borderColor: css("--line") },
    rightPriceScale: { borderColor: css("--line") },
  });
  const up = css("--up"), down = css("--down");
  const candles = chart.addSeries(LWC.CandlestickSeries, {
    upColor: up, downColor: down, wickUpColor: up, wickDownColor: down, borderVisible: false,
  });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.28 } });
  const volume = chart.addSeries(LWC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "" });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
  const good = bars.filter((b) => [b.open, b.high, b.low, b.close].every((v) => typeof v === "number"));
  candles.setData(good.map((b) => ({ time: b.date, open: b.open, high: b.high, low: b.low, close: b.close })));
  volume.setData(good.map((b) => ({
    time: b.date, value: b.volume ?? 0, color: b.close >= b.open ? `${up}66` : `${down}66`,
  })));
  chart.timeScale().fitContent();
  box.dataset.candles = String(candles.data().length);  // what the library holds, for tests
}

async function loadBars(symbol, interval, adjust) {
  const box = $("#chart");
  box.setAttribute("aria-busy", "true");
  const q = new URLSearchParams({ interval, adjust, format: "json" });
  const data = await api(`/v1/bars/${encodeURIComponent(symbol)}?${q}`);
  drawChart(box, data.bars);
  box.dataset.interval = interval;
  box.dataset.adjust = adjust;
  box.dataset.generation = String(data.generation);
  box.setAttribute("aria-busy", "false");
  const last = data.bars[data.bars.length - 1];
  box.setAttribute("aria-label", `${symbol} ${interval} candlestick chart, ${data.count} bars` +
    (last ? `; last ${last.date}: open ${price(last.open)}, high ${price(last.high)}, low ${price(last.low)}, close ${price(last.close)}` : ""));
  $("#bars-summary").textContent = last
    ? `${nf.format(data.count)} bars · last ${last.date} close ${price(last.close)} · volume ${num(last.volume)} · generation ${data.generation}`
    : "no bars";
}

function profileSection(p) {
  const rows = [
    ["exchange", p.exchange], ["first bar", p.first_date], ["last bar", p.last_date], ["rows", num(p.rows)],
    ["sessions behind", num(p.staleness_sessions)], ["sessions present / expected", `${num(p.sessions_present)} / ${num(p.sessions_expected)}`],
    ["gaps", num(p.gap_count)], ["price jumps", num(p.jump_count)], ["zero-volume runs", num(p.zero_volume_run_count)],
    ["unscheduled sessions", num(p.unscheduled_sessions)], ["quarantined rows", num(p.quarantined)],
    ["stored size", bytes(p.bytes)], ["profiled on", p.as_of],
  ];
  const gaps = (p.gaps || []).slice(0, 50).map((g) => el("li", { text: typeof g === "object" ? JSON.stringify(g) : String(g) }));
  return el("section", { id: "profile", "aria-labelledby": "profile-h" },
    el("h2", { id: "profile-h", text: "Data-quality profile" }),
    el("dl", { class: "kv" }, rows.map(([k, v]) => [el("dt", { text: k }), el("dd", { "data-field": k, text: v ?? "—" })])),
    gaps.length ? el("details", {}, el("summary", { text: `gaps (${p.gap_count})` }), el("ul", {}, gaps)) : null);
}

function describeEvidence(ev) {
  if (!ev || typeof ev !== "object") return "";
  const parts = [];
  if (ev.split_ratio) parts.push(`split ${ev.split_ratio}`);
  if (ev.adj_close_factor) parts.push(`adj close × ${Number(ev.adj_close_factor).toFixed(4)}`);
  if (ev.first_day) parts.push(`from ${ev.first_day}`);
  if (Array.isArray(ev.volume_changes) && ev.volume_changes.length) parts.push(`${ev.volume_changes.length} volume revision(s)`);
  return parts.join(" · ") || JSON.stringify(ev).slice(0, 200);
}

function historySection(h) {
  const restated = h.restatements.map((r) => el("tr", {},
    el("td", { text: r.detected_at.slice(0, 19).replace("T", " ") }),
    el("td", { class: "text", text: r.kinds.join(", ") }),
    el("td", { class: "text", text: describeEvidence(r.evidence) }),
    el("td", { class: "text" }, el("a", { href: `#/run/${encodeURIComponent(r.run_id)}`, text: r.run_id }))));
  const quarantined = h.quarantine.map((q) => el("tr", {},
    el("td", { text: q.date }), el("td", { class: "text", text: q.reason }),
    el("td", { class: "text" }, el("a", { href: `#/run/${encodeURIComponent(q.run_id)}`, text: q.run_id }))));
  return el("div", { class: "cols" },
    el("section", { "aria-labelledby": "restatements-h" },
      el("h2", { id: "restatements-h", text: `Restatements (${h.restatement_count})` }),
      restated.length ? table("restatements", "newest first", [["detected"], ["kinds", "text"], ["evidence", "text"], ["run", "text"]], restated)
        : el("p", { class: "muted", id: "restatements", text: "None: the provider never revised stored bars." })),
    el("section", { "aria-labelledby": "quarantine-h" },
      el("h2", { id: "quarantine-h", text: `Quarantined rows (${h.quarantine_count})` }),
      quarantined.length ? table("quarantine", "rows set aside by validation", [["date"], ["reason", "text"], ["run", "text"]], quarantined)
        : el("p", { class: "muted", id: "quarantine", text: "None." })));
}

async function symbolPage(symbol, params) {
  const interval = INTERVALS.some(([v]) => v === params.get("interval")) ? params.get("interval") : "1d";
  const adjust = ADJUSTMENTS.some(([v]) => v === params.get("adjust")) ? params.get("adjust") : "split";
  const go = (i, a) => { location.hash = `#/symbol/${encodeURIComponent(symbol)}?interval=${i}&adjust=${a}`; };
  const current = $("#symbol-page");
  if (current && current.dataset.symbol === symbol) {  // a switch: redraw the chart only
    for (const b of document.querySelectorAll("[data-interval]")) if (b.tagName === "BUTTON") b.setAttribute("aria-pressed", String(b.dataset.interval === interval));
    for (const b of document.querySelectorAll("[data-adjust]")) if (b.tagName === "BUTTON") b.setAttribute("aria-pressed", String(b.dataset.adjust === adjust));
    await loadBars(symbol, interval, adjust);
    return;
  }
  document.title = `${symbol} · Barlake`;
  setMain(
    el("div", { id: "symbol-page", "data-symbol": symbol },
      el("p", {}, el("a", { href: "#/", text: "← Overview" })),
      el("h1", { id: "symbol-h", text: symbol }),
      el("div", { class: "toolbar" },
        switches("interval", INTERVALS, interval, (i) => go(i, $("#chart").dataset.adjust || adjust)),
        switches("adjust", ADJUSTMENTS, adjust, (a) => go($("#chart").dataset.interval || interval, a))),
      el("div", { id: "chart", role: "img", "aria-label": `${symbol} chart, loading` }),
      el("p", { id: "bars-summary", class: "muted", "aria-live": "polite" }),
      el("div", { id: "profile-slot" }), el("div", { id: "history-slot" })));
  const [, profile, hist] = await Promise.allSettled([
    loadBars(symbol, interval, adjust),
    api(`/v1/profiles/${encodeURIComponent(symbol)}`),
    api(`/v1/history/${encodeURIComponent(symbol)}`),
  ]).then((results) => {
    if (results[0].status === "rejected") throw results[0].reason;
    return results;
  });
  $("#profile-slot").replaceChildren(profile.status === "fulfilled" ? profileSection(profile.value)
    : el("p", { class: "muted", text: `No profile yet (${profile.reason.message}).` }));
  $("#history-slot").replaceChildren(hist.status === "fulfilled" ? historySection(hist.value)
    : el("p", { class: "muted", text: `No history (${hist.reason.message}).` }));
}

/* ---------------------------------------------------------------- router */

async function route() {
  showError("");
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] !== "symbol" && chart) { chart.remove(); chart = null; }
  try {
    if (parts[0] === "symbol" && parts[1]) await symbolPage(parts[1].toUpperCase(), params);
    else if (parts[0] === "run" && parts[1]) await runPage(parts[1]);
    else await overview();
  } catch (e) {
    if (e.status !== 401) showError(e.message || String(e));
    if (!$("#main").children.length || $("#loading")) setMain(el("p", { class: "muted", text: "Nothing to show." }));
  }
  document.body.dataset.ready = location.hash || "#/";  // the page is drawn (tests wait on it)
}

function init() {
  $("#search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("#search-input").value.trim().toUpperCase();
    if (!q) return;
    $("#search-input").value = "";
    location.hash = `#/symbol/${encodeURIComponent(q)}`;
  });
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("#key-input").value);
    $("#key-form").hidden = true;
    symbolsCache = null;
    route();
  });
  window.addEventListener("hashchange", () => { delete document.body.dataset.ready; route(); });
  route();
}

init();
