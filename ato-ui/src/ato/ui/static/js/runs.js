// The runs table: every run (virtualised rows), varying config keys as columns, metric
// summaries, sort, filters in the URL, selection for charts/compare, CSV export, and the
// parallel-coordinates / scatter panel whose brushing filters the table.
import { api, clear, csvCell, download, el, exact, fmt, fmtTime, go, isoTime, liveSource, num, plural, runDuration, runDurationTitle,
         setParams, TZ, tagChip, UrlParams, varyingKeys } from "./util.js";
import { MAX_CHART_RUNS } from "./charts.js";
import { drawParcoords, drawScatter } from "./parcoords.js";

const ROW_H = 28;
const OVERSCAN = 12;
const STATUSES = ["", "running", "completed", "failed", "killed", "crashed"];

// Ranks of `values` (1-based), ties sharing their mean rank.
function ranks(values) {
  const order = values.map((v, i) => [v, i]).sort((a, b) => a[0] - b[0]);
  const out = new Array(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    for (let k = i; k <= j; k++) out[order[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

// Spearman's rank correlation of the finite pairs (x, y); null with fewer than 3 pairs or
// a constant side.
export function spearman(xs, ys) {
  const pairs = xs.map((x, i) => [x, ys[i]]).filter(([x, y]) =>
    typeof x === "number" && typeof y === "number" && Number.isFinite(x) && Number.isFinite(y));
  if (pairs.length < 3) return null;
  const rx = ranks(pairs.map((p) => p[0])), ry = ranks(pairs.map((p) => p[1]));
  const n = pairs.length, mean = (n + 1) / 2;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = rx[i] - mean, dy = ry[i] - mean;
    sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
  }
  return sxx && syy ? sxy / Math.sqrt(sxx * syy) : null;
}

// Of `keys` (config keys), the one whose |Spearman correlation| with `metric(run)` is the
// largest (the first of equals); null when no key correlates at all.
function strongestKey(runs, keys, metric) {
  const ys = runs.map(metric);
  let best = null, bestR = 0;
  for (const k of keys) {
    const r = spearman(runs.map((run) => run.config[k]), ys);
    if (r !== null && Math.abs(r) > bestR + 1e-12) { best = k; bestR = Math.abs(r); }
  }
  return best;
}

// The metrics shown by default: every key when there are at most DEFAULT_METRICS; else the
// first keys (sorted) that together cover every run which logged any metric, then more
// keys in order up to DEFAULT_METRICS, so no run's only metric (a study's `objective`)
// is hidden.
const DEFAULT_METRICS = 6;
export function defaultMetrics(runs, sums, keys) {
  if (keys.length <= DEFAULT_METRICS) return keys.slice();
  const chosen = [];
  const uncovered = new Set(runs.filter((r) => Object.keys(sums[r.id] || {}).length).map((r) => r.id));
  while (uncovered.size && chosen.length < DEFAULT_METRICS) {
    let best = null, bestN = 0;
    for (const k of keys) {
      if (chosen.includes(k)) continue;
      let n = 0;
      for (const id of uncovered) if (sums[id]?.[k]) n++;
      if (n > bestN) { best = k; bestN = n; }
    }
    if (best === null) break;
    chosen.push(best);
    for (const id of [...uncovered]) if (sums[id]?.[best]) uncovered.delete(id);
  }
  for (const k of keys) if (chosen.length < DEFAULT_METRICS && !chosen.includes(k)) chosen.push(k);
  return keys.filter((k) => chosen.includes(k));
}

export async function renderRuns(view, params) {
  const up = new UrlParams(params).takes("where", "tags", "status", "sort", "desc", "m", "const", "bk", "sel",
                                         "pc", "pcb", "pcm", "sx");
  const filters = {
    project: params.get("project") || "", where: params.get("where") || "",
    tags: params.get("tags") || "", status: up.choice("status", STATUSES, ""),
  };
  const whereInput = el("input", { type: "search", placeholder: "where, e.g. lr < 0.01 and model == 'resnet'",
                                   value: filters.where, testid: "filter-where", size: 40 });
  const tagsInput = el("input", { type: "search", placeholder: "tags (comma separated)",
                                  value: filters.tags, testid: "filter-tags", size: 18 });
  const statusSelect = el("select", { testid: "filter-status" },
    STATUSES.map((s) => el("option", { value: s, text: s || "any status", selected: s === filters.status })));
  const apply = () => {
    setParams({ where: whereInput.value.trim(), tags: tagsInput.value.trim(), status: statusSelect.value });
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  };
  const form = el("form", { class: "filters", testid: "filters",
                            onsubmit: (e) => { e.preventDefault(); apply(); } },
    whereInput, tagsInput, statusSelect, el("button", { type: "submit", testid: "filter-apply", text: "Filter" }));
  statusSelect.addEventListener("change", apply);
  const errorBox = el("div", { class: "error", testid: "filter-error" });
  view.append(form, errorBox);

  // The runs of `filters`. An unknown project is ignored for real: every project's runs,
  // the picker on "all projects", as if the parameter were absent.
  const fetchRuns = async () => {
    const got = await api("runs", filters);
    if (!filters.project || got.runs.length) return got;
    const names = (await api("info")).projects.map((p) => p.name);  // does it exist at all?
    if (names.includes(filters.project)) return got;
    up.bad("project", filters.project, `a project: ${names.join(", ") || "(none yet)"}`);
    filters.project = "";
    const picker = document.getElementById("project");
    if (picker) picker.value = "";
    return api("runs", filters);
  };
  let data;
  try {
    data = await fetchRuns();
  } catch (e) {
    if (!filters.where || e.status !== 400) {
      errorBox.textContent = e.message;
      up.show(view);
      return null;
    }
    // A where that does not parse is named (the parser's message, with its position) and
    // ignored: the table shows the runs of the other filters, as if it were absent.
    errorBox.textContent = `${e.message} — ignored: the table shows the runs without this filter`;
    errorBox.dataset.ignored = "where";
    filters.where = "";
    try {
      data = await fetchRuns();
    } catch (e2) {
      errorBox.textContent = e2.message;
      up.show(view);
      return null;
    }
  }
  const runs = data.runs;
  const sums = data.summaries;
  const metricKeys = data.metric_keys;
  // m: the metric keys shown; "-" (what unticking every key writes) is none of them.
  let chosen = params.get("m") === "-" ? [] : up.subset("m", metricKeys, "metric keys", "; or - for none") ?? defaultMetrics(runs, sums, metricKeys);
  const showConst = up.flag("const");
  let sortKey = params.get("sort") || "id";
  let sortDesc = up.flag("desc");
  const selected = new Set(up.ids("sel"));
  // A selected run this table does not show stays selected (it was picked under other
  // filters); an id no run has is named and dropped, so the counts on the buttons are runs.
  const here = new Set(runs.map((r) => r.id));
  const elsewhere = [...selected].filter((id) => !here.has(id));
  if (elsewhere.length) {
    const known = new Set();
    for (let i = 0; i < elsewhere.length; i += 1000) {
      const got = await api("runs", { ids: elsewhere.slice(i, i + 1000).join(",") });
      for (const r of got.runs) known.add(r.id);
    }
    const unknown = elsewhere.filter((id) => !known.has(id));
    if (unknown.length) {
      up.bad("sel", unknown.join(","), `ids of runs in this database (${plural(unknown.length, "id")} matched none)`);
      for (const id of unknown) selected.delete(id);
    }
  }
  let brushed = null;  // Set of run ids kept by the parallel-coordinates brushes

  const showBk = up.flag("bk");
  // Search bookkeeping keys (__hyperopt_id__, __budget__…) are columns only on request.
  const { varying, constant, bookkeeping } = varyingKeys(runs);
  const configCols = [...varying, ...(showBk ? bookkeeping : []), ...(showConst ? constant : [])];

  // A config or metric column is as wide as its header needs (within limits), so
  // "objective last" or "train.batch_size" is not cut to "objective la…".
  const fit = (label, min) => Math.round(Math.min(220, Math.max(min, 7.6 * label.length + 26)));
  const summary = (r, k, f) => { const s = sums[r.id]?.[k]; return s ? num(s[f]) : null; };
  // a config key's value ("inf", "-inf", "nan" as the API writes them read as the numbers
  // they are, so they sort as numbers)
  const configValue = (k) => (r) => num(r.config[k]);
  const columns = [
    { id: "id", label: "id", width: 64, get: (r) => r.id,
      cell: (r) => el("a", { href: `#/run/${r.id}`, text: r.id, testid: "run-link" }) },
    ...(filters.project ? [] : [{ id: "project", label: "project", width: 110, get: (r) => r.project }]),
    { id: "status", label: "status", width: 92, get: (r) => r.status,
      cell: (r) => el("span", { class: `status s-${r.status}`, text: r.status, testid: "status" }) },
    { id: "tags", label: "tags", width: 180, get: (r) => r.tags.join(","),
      cell: (r) => el("span", { class: "tags" }, r.tags.map(tagChip)) },
    // times in UTC, said in the header; the tooltip has the milliseconds (ISO 8601)
    { id: "start", label: `start (${TZ})`, width: 170, get: (r) => r.start, text: (r) => fmtTime(r.start),
      title: (r) => isoTime(r.start), csv: (r) => isoTime(r.start) },
    { id: "duration", label: "duration", width: 90, get: (r) => r.duration, text: runDuration,
      title: runDurationTitle },
    // a config column is as wide as its widest value too (lr 0.00739104 was cut to 0.007391…)
    ...configCols.map((k) => ({ id: "c:" + k, label: k, config: true, get: configValue(k),
      width: Math.max(fit(k, 90), Math.min(220, Math.round(16 + 7.8 * runs.reduce((w, r) => Math.max(w, fmt(configValue(k)(r)).length), 0)))) })),
    // a metric column is also as wide as its widest number (0.00543812 was cut to 0.005438…)
    ...chosen.flatMap((k) => ["last", "min", "max"].map((f) => ({
      id: `m:${f}:${k}`, label: `${k} ${f}`, metric: true, get: (r) => summary(r, k, f),
      width: Math.max(fit(`${k} ${f}`, 90), Math.min(220, Math.round(16 + 7.8 * runs.reduce((w, r) => Math.max(w, fmt(summary(r, k, f)).length), 0)))) }))),
  ];
  // sort: a column's id (id, project, status, tags, start, duration, c:<config key>,
  // m:<last|min|max>:<metric key>) of a column the table shows.
  // A config key or metric the table hides (constant among these runs, bookkeeping, not
  // picked) still sorts: a sort chosen on a column stays valid when a filter hides it.
  const hiddenSort = (() => {
    const c = /^c:(.+)$/s.exec(sortKey);
    if (c && runs.some((r) => c[1] in r.config)) return { id: sortKey, get: configValue(c[1]) };
    const m = /^m:(last|min|max):(.+)$/s.exec(sortKey);
    if (m && metricKeys.includes(m[2])) return { id: sortKey, get: (r) => summary(r, m[2], m[1]) };
    return null;
  })();
  if (!columns.some((c) => c.id === sortKey) && !hiddenSort) {
    const fixed = columns.filter((c) => !c.config && !c.metric).map((c) => c.id);
    const example = (keys, dflt) => keys.find((k) => !sortKey.endsWith(":" + k)) || dflt;
    up.bad("sort", sortKey, `a column: ${fixed.join(", ")}, c:<config key> ` +
      "(e.g. c:" + example([...configCols, ...constant], "lr") + "), m:last|min|max:<metric key> (e.g. m:last:" +
      example([...chosen, ...metricKeys], "loss") + ")");
    sortKey = "id";
  }
  const template = ["30px", ...columns.map((c) => c.width + "px")].join(" ");

  // ---------------------------------------------------------------- toolbar
  const count = el("span", { class: "count", testid: "row-count" });
  const chartsBtn = el("button", { testid: "open-charts", onclick: () => go("/charts", { runs: [...selected].join(",") }) });
  const compareBtn = el("button", { testid: "open-compare", onclick: () => go("/compare", { runs: [...selected].join(",") }) });
  const csvBtn = el("button", { testid: "export-csv", text: "CSV", onclick: () => exportCsv() });
  const pcBtn = el("button", { testid: "toggle-parallel", text: "Parallel coordinates" });
  const constBtn = constant.length ? el("button", { class: "link", testid: "toggle-constant",
    text: showConst ? `hide ${plural(constant.length, "constant key")}` : `${plural(constant.length, "constant config key")} hidden`,
    onclick: () => { setParams({ const: showConst ? "" : "1" }); window.dispatchEvent(new HashChangeEvent("hashchange")); } }) : null;
  const bkBtn = bookkeeping.length ? el("button", { class: "link", testid: "toggle-bookkeeping", title: bookkeeping.join(", "),
    text: showBk ? `hide ${plural(bookkeeping.length, "search bookkeeping key")}` : `${plural(bookkeeping.length, "search bookkeeping key")} (__…__) hidden`,
    onclick: () => { setParams({ bk: showBk ? "" : "1" }); window.dispatchEvent(new HashChangeEvent("hashchange")); } }) : null;
  const metricPicker = el("details", { class: "picker", testid: "metric-picker" },
    el("summary", { text: `metrics (${chosen.length}/${metricKeys.length})` }),
    metricKeys.map((k) => el("label", {},
      el("input", { type: "checkbox", value: k, checked: chosen.includes(k), onchange: (e) => {
        chosen = e.target.checked ? [...chosen, k] : chosen.filter((x) => x !== k);
        setParams({ m: chosen.join(",") || "-" });
        window.dispatchEvent(new HashChangeEvent("hashchange"));
      } }), k)));
  view.append(el("div", { class: "toolbar" }, count, chartsBtn, compareBtn, csvBtn, pcBtn, metricPicker, constBtn, bkBtn));

  const panel = el("div", { class: "panel hidden", testid: "parallel-panel" });
  view.append(panel);

  // ---------------------------------------------------------------- table
  const header = el("div", { class: "thead", style: { gridTemplateColumns: template } },
    el("div", { class: "th" }, el("input", { type: "checkbox", title: "select all shown", testid: "select-all",
      onchange: (e) => { for (const r of shown) e.target.checked ? selected.add(r.id) : selected.delete(r.id); updateSelection(); paint(true); } })),
    columns.map((c) => el("div", { class: "th" + (c.config ? " cfg" : "") + (c.metric ? " met" : ""), title: c.label,
      testid: "col-" + c.id, onclick: () => {
        if (sortKey === c.id) sortDesc = !sortDesc; else { sortKey = c.id; sortDesc = false; }
        setParams({ sort: sortKey === "id" ? "" : sortKey, desc: sortDesc ? "1" : "" });
        sortRows(); paint(true); markSort();
      } }, c.label, el("span", { class: "arrow" }))));
  const spacer = el("div", { class: "spacer" });
  const rowsBox = el("div", { class: "rows" });
  const scroller = el("div", { class: "table", testid: "runs-table" }, header, spacer);
  spacer.append(rowsBox);
  view.append(scroller);
  if (!runs.length) {
    // which filters left nothing (a tag filter kept while switching project reads "0 of
    // 0 runs"), with a way to drop them and keep the project
    const active = ["where", "tags", "status"].filter((k) => filters[k]).map((k) => `${k} ${filters[k]}`);
    view.append(el("p", { class: "muted", testid: "empty" }, active.length
      ? [`No runs${filters.project ? ` in project ${filters.project}` : ""} match ${active.join(", ")}. `,
         el("a", { href: "#/runs" + (filters.project ? `?project=${encodeURIComponent(filters.project)}` : ""),
                   testid: "clear-filters", text: "Clear the filters" })]
      : `No runs${filters.project ? ` in project ${filters.project}` : ""} yet.`));
  }

  let shown = runs.slice();
  const cmpValues = (a, b) => {
    const na = a === null || a === undefined, nb = b === null || b === undefined;
    if (na || nb) return na && nb ? 0 : na ? 1 : -1;  // missing values last
    if (typeof a === "number" && typeof b === "number") {
      if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) - Number.isNaN(b);
      return a - b;
    }
    if (typeof a === "number") return -1;
    if (typeof b === "number") return 1;
    return String(a).localeCompare(String(b));
  };
  function sortRows() {
    const col = columns.find((c) => c.id === sortKey) || hiddenSort || columns[0];
    const base = brushed ? runs.filter((r) => brushed.has(r.id)) : runs.slice();
    base.sort((a, b) => {
      const va = col.get(a), vb = col.get(b);
      const missing = (va === null || va === undefined) - (vb === null || vb === undefined);
      if (missing) return missing;
      const c = cmpValues(va, vb);
      return (sortDesc ? -c : c) || a.id - b.id;
    });
    shown = base;
    spacer.style.height = shown.length * ROW_H + "px";
    count.textContent = `${shown.length.toLocaleString("en-US")} of ${plural(runs.length, "run")}`;
    count.dataset.count = String(shown.length);
  }
  function markSort() {
    for (const th of header.querySelectorAll(".th")) th.classList.remove("asc", "desc");
    const th = header.querySelector(`[data-testid="${CSS.escape("col-" + sortKey)}"]`);
    if (th) th.classList.add(sortDesc ? "desc" : "asc");
  }
  function makeRow(r) {
    const row = el("div", { class: "tr" + (selected.has(r.id) ? " sel" : ""), testid: "row-" + r.id,
                            style: { gridTemplateColumns: template } });
    row.dataset.run = r.id;
    row.append(el("div", { class: "td" }, el("input", { type: "checkbox", checked: selected.has(r.id), testid: "select",
      onchange: (e) => { e.target.checked ? selected.add(r.id) : selected.delete(r.id); row.classList.toggle("sel", e.target.checked); updateSelection(); } })));
    for (const c of columns) {
      const td = el("div", { class: "td" + (c.metric ? " num" : "") });
      if (c.cell) td.append(c.cell(r));
      else {
        const text = c.text ? c.text(r) : fmt(c.get(r));
        td.textContent = text;
        // the whole value: every digit of a number fmt() rounds, all of a long text
        td.title = (c.title ? c.title(r) : exact(c.get(r))) || text;
      }
      row.append(td);
    }
    return row;
  }
  let painted = [-1, -1];
  function paint(force = false) {
    const top = scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(shown.length, Math.ceil((top + scroller.clientHeight) / ROW_H) + OVERSCAN);
    if (!force && first === painted[0] && last === painted[1]) return;
    painted = [first, last];
    clear(rowsBox);
    rowsBox.style.transform = `translateY(${first * ROW_H}px)`;
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.append(makeRow(shown[i]));
    rowsBox.append(frag);
  }
  function updateSelection() {
    const n = selected.size;
    chartsBtn.textContent = `Charts (${n})`;
    chartsBtn.disabled = n < 1 || n > MAX_CHART_RUNS;
    chartsBtn.title = n > MAX_CHART_RUNS ? `charts take at most ${MAX_CHART_RUNS.toLocaleString("en-US")} runs` : "";
    compareBtn.textContent = `Compare (${n})`;
    compareBtn.disabled = n < 2 || n > 10;
    compareBtn.title = n > 10 ? "compare takes 2 to 10 runs" : "";
    setParams({ sel: [...selected].join(",") });
  }
  function exportCsv() {
    // start: ISO 8601 with its offset (2026-12-01T00:50:04.125+00:00), numbers in full
    const cols = columns.filter((c) => c.id !== "id");
    const lines = [["id", ...cols.map((c) => (c.csv ? c.id : c.label))].map(csvCell).join(",")];
    for (const r of shown) {
      // tags as a JSON list: a tag may hold a space or a comma (["ü tag","baseline"])
      lines.push([r.id, ...cols.map((c) => (c.id === "tags" ? JSON.stringify(r.tags) : c.csv ? c.csv(r) : c.get(r)))]
        .map(csvCell).join(","));
    }
    download("runs.csv", new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" }));
  }

  // ---------------------------------------------------------------- parallel coordinates
  let pcOpen = up.flag("pc");
  // The brushes live in the URL (pcb: JSON {axis key: [from, to]} as fractions of each
  // axis), so a shared link restores them and the rows they keep.
  let pcBrushes = {};
  try { pcBrushes = JSON.parse(params.get("pcb") || "{}") || {}; } catch { pcBrushes = null; }
  if (pcBrushes === null || typeof pcBrushes !== "object" || Array.isArray(pcBrushes)) {
    up.bad("pcb", params.get("pcb"), 'a JSON object {"<axis key>": [from, to]}, fractions of each axis');
    pcBrushes = {};
  }
  // Each brush is checked too: an axis the panel has, two fractions 0 <= from <= to <= 1.
  for (const [key, range] of Object.entries(pcBrushes)) {
    const [a, b] = Array.isArray(range) && range.length === 2 ? range.map(Number) : [NaN, NaN];
    const axis = key === "metric" || varying.includes(key);
    if (axis && Number.isFinite(a) && Number.isFinite(b) && a >= 0 && b <= 1 && a <= b) continue;
    up.bad("pcb", `${key}=${JSON.stringify(range)}`, axis
      ? "a brush [from, to] with 0 <= from <= to <= 1"
      : `a brush on an axis shown: metric, ${varying.join(", ") || "(no varying config key)"}`);
    delete pcBrushes[key];
  }
  // The panel's metric and scatter x, checked once against what the table has.
  if (up.raw("pcm") !== null && !metricKeys.includes(params.get("pcm"))) {
    up.bad("pcm", params.get("pcm"), `a metric key: ${metricKeys.join(", ")}`); params.delete("pcm");
  }
  function renderPanel() {
    clear(panel);
    panel.classList.toggle("hidden", !pcOpen);
    if (!pcOpen) return;
    const numericKeys = varying.filter((k) => runs.some((r) => typeof r.config[k] === "number"));
    const metric = params.get("pcm") || chosen[0] || metricKeys[0];
    const metricSelect = el("select", { testid: "pc-metric", onchange: (e) => {
      delete pcBrushes.metric;  // a brush on the old metric's axis means nothing on the new one
      setParams({ pcm: e.target.value, pcb: Object.keys(pcBrushes).length ? JSON.stringify(pcBrushes) : "" });
      params.set("pcm", e.target.value); renderPanel(); } },
      metricKeys.map((k) => el("option", { value: k, text: `${k} (last)`, selected: k === metric })));
    // The default x: the numeric key whose rank correlation with the metric is strongest
    // (the hyperparameter that matters most, on any monotone scale: lr works as log lr).
    const xKey = (varying.includes(params.get("sx")) ? params.get("sx") : null) ||
      strongestKey(runs, numericKeys, (r) => summary(r, metric, "last")) || numericKeys[0] || varying[0];
    const xSelect = el("select", { testid: "scatter-x", onchange: (e) => { setParams({ sx: e.target.value }); params.set("sx", e.target.value); renderPanel(); } },
      varying.map((k) => el("option", { value: k, text: k, selected: k === xKey })));
    const pcBox = el("div", { class: "pc", testid: "parallel" });
    const scBox = el("div", { class: "scatter", testid: "scatter" });
    const brushNote = el("span", { class: "muted", testid: "brush-note" });
    panel.append(el("div", { class: "toolbar" }, el("label", {}, "metric ", metricSelect),
      el("label", {}, "scatter x ", xSelect), brushNote), el("div", { class: "pc-row" }, pcBox, scBox));
    const dims = varying.map((k) => ({ key: k, label: k, get: (r) => r.config[k] }));
    if (metric) dims.push({ key: "metric", label: `${metric} (last)`, get: (r) => summary(r, metric, "last"), metric: true });
    requestAnimationFrame(() => {
      drawParcoords(pcBox, runs, dims, (keep, ranges) => {
        brushed = keep;
        pcBrushes = ranges;
        setParams({ pcb: keep ? JSON.stringify(ranges) : "" });
        brushNote.textContent = keep ? `brushing keeps ${plural(keep.size, "run")}` : "";
        sortRows(); paint(true);
        scatter();
      }, pcBrushes);
      scatter();
    });
    // The scatter dims the runs outside the brushes, as the table and the lines do.
    function scatter() {
      if (xKey && metric) drawScatter(scBox, runs, { label: xKey, get: (r) => r.config[xKey] },
        { label: `${metric} (last)`, get: (r) => summary(r, metric, "last") }, (id) => go(`/run/${id}`), brushed);
    }
  }
  pcBtn.addEventListener("click", () => {
    pcOpen = !pcOpen; brushed = null; pcBrushes = {};
    setParams({ pc: pcOpen ? "1" : "", pcb: "" }); sortRows(); paint(true); renderPanel();
  });

  // ---------------------------------------------------------------- live status of running runs
  let source = null;
  const running = runs.filter((r) => r.status === "running" || r.status === "crashed").map((r) => r.id);
  if (running.length && running.length <= 1000) {
    source = liveSource("/api/live?runs=" + running.join(","));
    source.addEventListener("status", (ev) => {
      const changed = JSON.parse(ev.data);
      let any = false;
      for (const r of runs) if (changed[r.id] && changed[r.id] !== r.status) { r.status = changed[r.id]; any = true; }
      if (any) paint(true);
    });
  }

  scroller.addEventListener("scroll", () => paint());
  const onResize = () => paint(true);
  window.addEventListener("resize", onResize);
  sortRows();
  markSort();
  updateSelection();
  paint(true);
  if (up.raw("sx") !== null && !varying.includes(params.get("sx"))) {
    up.bad("sx", params.get("sx"), `a config key that varies here: ${varying.join(", ") || "(none)"}`);
  }
  renderPanel();
  up.show(view);
  scroller.dataset.ready = "1";
  return () => { window.removeEventListener("resize", onResize); if (source) source.close(); };
}
