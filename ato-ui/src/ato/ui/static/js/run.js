// One run: status, times, tags, nested typed config, artifacts, fingerprints, metric
// summaries and charts.
import { api, el, exact, fmt, fmtTime, isBookkeeping, isoTime, isRunId, notFound, RUN_ID_RULE, runDuration,
         runDurationTitle, TZ, tagChip, UrlParams } from "./util.js";
import { CHART_PARAMS, ChartBoard, chartControls, chartOptions } from "./charts.js";
import { appendRunIO, fetchRunIO } from "./models.js";

// How often a running run's duration and metric summaries are re-read (ms).
const REFRESH_MS = 2000;

// The facts list's lines for why a run failed or was killed.
const errorFacts = (error) => [el("dt", { text: "error" }), el("dd", { class: "error mono", testid: "run-error", text: error })];

export function configTree(value, types, prefix = "") {
  if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
    return el("ul", { class: "tree" }, Object.entries(value).map(([k, v]) => {
      const path = prefix ? `${prefix}.${k}` : k;
      const isDict = v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length;
      return el("li", {}, el("span", { class: isBookkeeping(k) ? "k bk" : "k", text: k,
        title: isBookkeeping(k) ? "search bookkeeping, added by the search" : null }), isDict ? configTree(v, types, path) : [
        el("span", { class: "v", testid: "config-value", text: fmt(v), title: exact(v) }),
        el("span", { class: "type", text: types[path] || "" })]);
    }));
  }
  return el("span", { class: "v", text: fmt(value), title: exact(value) });
}

// The metric summaries of a run row: a table, or a "no metrics" line.
function metricsTable(run) {
  if (!run.metric_keys.length) return el("p", { class: "muted", text: "no metrics" });
  return el("table", { class: "grid metrics", testid: "run-metrics" },
    el("tr", {}, ["metric", "last", "min", "max", "points", "last step"].map((h, i) => el("th", { class: i ? "num" : null, text: h }))),
    run.metric_keys.map((k) => { const s = run.summaries[k] || {};
      // values as everywhere (rounded, the full value as a tooltip); counts and steps
      // with thousands separators, as the chart badges write them, and exact past 2^53
      // (the answer's exact digits, run.exact: 2^63 - 1 read 9,223,372,036,854,776,000)
      const e = run.exact?.summaries?.[k] || s;
      const count = (v) => (Number.isInteger(v) || typeof v === "bigint" ? v.toLocaleString("en-US") : fmt(v));
      return el("tr", {}, el("td", { text: k }),
        [s.last, s.min, s.max].map((v) => el("td", { class: "num", text: fmt(v), title: exact(v) })),
        [e.count, e.last_step].map((v) => el("td", { class: "num", text: count(v) }))); }));
}

// `part`: the id as the address has it (#/run/12); anything but a run id (isRunId) is
// named with the rule every view states, and the way back to the runs.
export async function renderRun(view, part, params) {
  const up = new UrlParams(params).takes(CHART_PARAMS);
  if (!isRunId(part)) {
    notFound(view, `${JSON.stringify(part ?? "")} is not a run id: expected ${RUN_ID_RULE} (#/run/12)`, "#/runs", "runs");
    up.show(view);
    return null;
  }
  // the id as typed, never through a Number: past 2^53 that rounds
  const id = part;
  const io = fetchRunIO(id);  // inputs/outputs, fetched beside the run
  const run = await api(`run/${id}`, {}, null, true);
  view.append(
    el("h2", {}, `Run #${run.id} `, el("span", { class: `status s-${run.status}`, text: run.status, testid: `run-status-${run.id}` })),
    el("dl", { class: "facts", testid: "run-facts" },
      el("dt", { text: "project" }), el("dd", { text: run.project }),
      el("dt", { text: `started (${TZ})` }), el("dd", { testid: "run-started", text: fmtTime(run.start), title: isoTime(run.start) || null }),
      el("dt", { text: `ended (${TZ})` }), el("dd", { testid: "run-ended", text: fmtTime(run.end), title: isoTime(run.end) || null }),
      el("dt", { text: "duration" }), el("dd", { testid: "run-duration", text: runDuration(run), title: runDurationTitle(run) }),
      ...(run.error ? errorFacts(run.error) : []),
      el("dt", { text: "structural hash" }), el("dd", { class: "mono", text: run.hash || "–" }),
      el("dt", { text: "tags" }), el("dd", { testid: "run-tags" }, run.tags.length
        ? run.tags.map(tagChip) : el("span", { class: "muted", text: "–" }))));
  const cols = el("div", { class: "two-col" });
  cols.append(el("section", { class: "box", testid: "run-config" }, el("h3", { text: "config" }), configTree(run.config_tree, run.types)));
  const right = el("section", { class: "box" });
  let metrics = metricsTable(run);
  right.append(el("h3", { text: "metrics" }), metrics);
  right.append(el("h3", { text: "artifacts" }), run.artifacts.length ? el("table", { class: "grid", testid: "run-artifacts" },
    el("tr", {}, ["path", "type", "metadata"].map((h) => el("th", { text: h }))),
    run.artifacts.map((a) => el("tr", {}, el("td", { class: "mono", text: a.path }), el("td", { text: a.type ?? "–" }), el("td", { class: "mono", text: fmt(a.metadata), title: exact(a.metadata) }))))
    : el("p", { class: "muted", text: "no artifacts" }));
  right.append(el("h3", { text: "code fingerprints" }), run.fingerprints.length ? el("table", { class: "grid", testid: "run-fingerprints" },
    el("tr", {}, ["trace", "type", "fingerprint"].map((h) => el("th", { text: h }))),
    run.fingerprints.map((f) => el("tr", {}, el("td", { class: "mono", text: f.trace }), el("td", { text: f.type }), el("td", { class: "mono", text: f.fingerprint.slice(0, 16), title: f.fingerprint }))))
    : el("p", { class: "muted", text: "no fingerprints" }));
  cols.append(right);
  view.append(cols);
  await appendRunIO(view, io);  // the dataset versions it used, the models it produced
  if (!run.metric_keys.length) { chartOptions(up, []); up.show(view); return null; }
  const holder = el("div");
  let board = null;
  const { bar, opts } = chartControls(params, [], () => { for (const c of board.cards.values()) if (c.mounted) board.draw(c); }, up);
  view.append(el("h3", { text: "charts" }), bar, holder);
  up.show(view);
  board = new ChartBoard(holder, [run], run.metric_keys, opts, { [run.id]: run.summaries });
  // A live run: its duration and metric summaries are re-read every REFRESH_MS while it
  // runs (the charts take their points from the stream), and its end, duration and final
  // summaries once it ends.
  const timer = run.status === "running" || run.status === "crashed"
    ? setInterval(() => (metrics.isConnected ? refresh() : clearInterval(timer)), REFRESH_MS) : null;
  board.onStatus = (runId, status) => {
    if (runId !== run.id || status === "running" || status === "crashed") return;
    clearInterval(timer);
    refresh();
  };
  const refresh = async () => {
    let fresh;
    try { fresh = await api(`run/${id}`, {}, null, true); } catch (e) { console.error(e); return; }
    if (!metrics.isConnected) return;  // the page was left meanwhile
    const ended = view.querySelector("[data-testid='run-ended']");
    ended.textContent = fmtTime(fresh.end);
    ended.title = isoTime(fresh.end);
    const duration = view.querySelector("[data-testid='run-duration']");
    duration.textContent = runDuration(fresh);
    duration.title = runDurationTitle(fresh) || "";
    if (fresh.error && !view.querySelector("[data-testid='run-error']")) duration.after(...errorFacts(fresh.error));
    const table = metricsTable(fresh);
    metrics.replaceWith(table);
    metrics = table;
    view.querySelector("[data-testid='run-facts']").dataset.refreshed = fresh.status;
  };
  return () => { clearInterval(timer); board.destroy(); };
}
