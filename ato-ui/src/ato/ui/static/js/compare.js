// Compare 2–10 runs: config diff (only differences by default), structure diff,
// fingerprint diff, final/best metrics with deltas against the first run, overlaid charts.
import { api, el, exact, fmt, isBookkeeping, notFound, num, plural, setParams, UrlParams, varyingKeys } from "./util.js";
import { CHART_PARAMS, ChartBoard, chartControls, chartOptions } from "./charts.js";

const ABSENT = "(absent)";

// The difference v - base, as shown (" (+0.1)") and in full for the tooltip; null when
// either is missing or not finite.
function delta(v, base) {
  v = num(v); base = num(base);
  if (typeof v !== "number" || typeof base !== "number" || !Number.isFinite(v) || !Number.isFinite(base)) return null;
  const d = v - base;
  if (d === 0) return { text: " (±0)", full: " (±0)" };
  const sign = d > 0 ? "+" : "";
  return { text: ` (${sign}${fmt(d)})`, full: ` (${sign}${exact(d) ?? fmt(d)})` };
}

// A metric cell: the value (and its delta against the first run) rounded as everywhere,
// the tooltip holding every digit of both; no tooltip when nothing was rounded.
function metricCell(v, base, withDelta) {
  if (v === undefined) return el("td", { class: "num", text: ABSENT });
  const value = num(v);
  const d = withDelta ? delta(v, base) : null;
  const text = fmt(value) + (d ? d.text : "");
  const full = (exact(value) ?? fmt(value)) + (d ? d.full : "");
  return el("td", { class: "num", text, title: full !== text ? full : null });
}

// A config value: at most CLIP characters shown (a 3,000-character string would make its
// row as tall as the page), the whole value in the tooltip.
const CLIP = 300;
function valueCell(text, full) {
  const clipped = text.length > CLIP ? text.slice(0, CLIP) + "…" : text;
  return el("td", { class: "val", text: clipped, title: full ?? (clipped !== text ? text : null) });
}

export async function renderCompare(view, params) {
  const up = new UrlParams(params).takes("runs", "all", "bk", CHART_PARAMS);
  const ids = up.ids("runs");  // a repeated id counts once: a run is not compared with itself
  if (ids.length < 2 || ids.length > 10) {
    notFound(view, `Compare takes 2 to 10 different runs, got ${ids.length}.`, "#/runs", "runs (select 2 to 10 to compare)");
    up.show(view);
    return null;
  }
  // Every unknown id is named at once (not only the first), with a way on.
  const settled = await Promise.allSettled(ids.map((id) => api(`run/${id}`)));
  const failed = settled.map((s, i) => [s, ids[i]]).filter(([s]) => s.status === "rejected");
  if (failed.length) {
    if (failed.some(([s]) => s.reason.status !== 404)) throw failed.find(([s]) => s.reason.status !== 404)[0].reason;
    const missing = failed.map(([, id]) => id);
    const found = ids.filter((id) => !missing.includes(id));
    notFound(view, missing.length === 1 ? `no run with id ${missing[0]}` : `no runs with ids ${missing.join(", ")}`, "#/runs", "runs");
    if (found.length >= 2) {
      view.querySelector("[data-testid='not-found']").append(el("p", {}, el("a", {
        href: `#/compare?runs=${found.join(",")}`, testid: "compare-found", text: `compare the ${found.length} runs that exist (#${found.join(", #")})` })));
    }
    up.show(view);
    return null;
  }
  const runs = settled.map((s) => s.value);
  const onlyDiff = !up.flag("all");
  const showBk = up.flag("bk");
  view.append(el("h2", { text: `Compare ${runs.map((r) => "#" + r.id).join(", ")}` }));
  const head = () => el("tr", {}, el("th", { text: "key" }), runs.map((r) => el("th", {}, el("a", { href: `#/run/${r.id}`, text: `#${r.id}` }))));

  // ------------------------------------------------------------ config
  const toggle = el("label", {}, el("input", { type: "checkbox", testid: "only-diff", checked: onlyDiff,
    onchange: (e) => { setParams({ all: e.target.checked ? "" : "1" }); window.dispatchEvent(new HashChangeEvent("hashchange")); } }), " only differences");
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.config)))].sort();
  const same = (k) => runs.every((r) => JSON.stringify(r.config[k]) === JSON.stringify(runs[0].config[k]) && (k in r.config) === (k in runs[0].config));
  // Search bookkeeping (__hyperopt_id__, __budget__…) differs between any two trials: left
  // out of "only differences" unless asked for (bk=1); the full list always has it.
  const bkDiff = keys.filter((k) => isBookkeeping(k) && !same(k));
  const shownKeys = onlyDiff ? keys.filter((k) => !same(k) && (showBk || !isBookkeeping(k))) : keys;
  const bkToggle = onlyDiff && bkDiff.length ? el("button", { class: "link", testid: "toggle-bookkeeping",
    title: bkDiff.join(", "),
    text: showBk ? `hide ${plural(bkDiff.length, "search bookkeeping key")}` : `${plural(bkDiff.length, "search bookkeeping key")} (__…__) hidden`,
    onclick: () => { setParams({ bk: showBk ? "" : "1" }); window.dispatchEvent(new HashChangeEvent("hashchange")); } }) : null;
  const configTable = el("table", { class: "grid diff", testid: "config-diff" }, head(),
    shownKeys.map((k) => el("tr", { class: same(k) ? "" : "differs", testid: "diff-row" }, el("td", { class: "mono", text: k }),
      runs.map((r) => valueCell(k in r.config ? fmt(r.config[k]) : ABSENT, exact(r.config[k]))))));
  view.append(el("section", { class: "box" }, el("h3", {}, "config ", toggle,
    el("span", { class: "muted", text: ` ${keys.length - keys.filter((k) => !same(k)).length} of ${plural(keys.length, "key")} equal ` }), bkToggle),
    shownKeys.length ? configTable : el("p", { class: "muted", testid: "config-identical",
      text: bkDiff.length && onlyDiff ? "configs are identical apart from search bookkeeping" : "configs are identical" })));

  // ------------------------------------------------------------ structure
  const typeKeys = [...new Set(runs.flatMap((r) => Object.keys(r.types)))].sort();
  // search bookkeeping keys (a trial's __metric__…) are left out as in the config diff
  const structDiff = typeKeys.filter((k) => (showBk || !isBookkeeping(k)) && runs.some((r) => r.types[k] !== runs[0].types[k]));
  // structures told apart by their keys and types (the stored structural hash joins a
  // path's segments with dots, so {"a.b": 1} and {a: {b: 1}} share one)
  const shapes = new Set(runs.map((r) => JSON.stringify(typeKeys.filter((k) => showBk || !isBookkeeping(k)).map((k) => r.types[k] ?? null))));
  const hashes = new Set(runs.map((r) => r.hash));
  view.append(el("section", { class: "box", testid: "structure-diff" }, el("h3", { text: "structure (keys and types)" }),
    el("p", { testid: "structure-summary", text: shapes.size > 1 ? `${shapes.size} different structures`
      : hashes.size === 1 ? "identical structure (same structural hash)" : "identical structure apart from search bookkeeping" }),
    structDiff.length ? el("table", { class: "grid diff" }, head(), structDiff.map((k) => el("tr", { class: "differs" },
      el("td", { class: "mono", text: k }), runs.map((r) => el("td", { text: r.types[k] ?? ABSENT }))))) : null));

  // ------------------------------------------------------------ fingerprints
  const fp = runs.map((r) => new Map(r.fingerprints.map((f) => [`${f.trace} (${f.type})`, f.fingerprint])));
  const traces = [...new Set(fp.flatMap((m) => [...m.keys()]))].sort();
  const changed = traces.filter((t) => fp.some((m) => m.get(t) !== fp[0].get(t)));
  view.append(el("section", { class: "box", testid: "fingerprint-diff" }, el("h3", { text: "code fingerprints" }),
    el("p", { text: traces.length ? `${changed.length} of ${plural(traces.length, "traced function")} differ${changed.length === 1 && traces.length === 1 ? "s" : ""}` : "no fingerprints recorded" }),
    changed.length ? el("table", { class: "grid diff" }, head(), changed.map((t) => el("tr", { class: "differs" },
      el("td", { class: "mono", text: t }), fp.map((m) => el("td", { class: "mono", text: (m.get(t) || ABSENT).slice(0, 12) }))))) : null));

  // ------------------------------------------------------------ metrics
  const mkeys = [...new Set(runs.flatMap((r) => r.metric_keys))].sort();
  const rows = [];
  for (const k of mkeys) {
    for (const [field, label] of [["last", "final"], ["min", "min"], ["max", "max"]]) {
      const base = runs[0].summaries[k]?.[field];
      rows.push(el("tr", { testid: "metric-row" }, el("td", { class: "mono", text: `${k} ${label}` }),
        runs.map((r, i) => metricCell(r.summaries[k]?.[field], base, i > 0))));
    }
  }
  view.append(el("section", { class: "box", testid: "metric-compare" }, el("h3", { text: "metrics (deltas against the first run)" }),
    mkeys.length ? el("table", { class: "grid" }, head(), rows) : el("p", { class: "muted", text: "no metrics" })));

  // ------------------------------------------------------------ charts
  const rowsForCharts = runs.map((r) => ({ id: r.id, config: r.config, start: r.start, status: r.status, hash: r.hash }));
  const { varying } = varyingKeys(rowsForCharts);
  // without metrics there are no charts, but their options are still checked and named
  if (!mkeys.length) { chartOptions(up, varying); up.show(view); return null; }
  let board = null;
  const holder = el("div");
  const { bar, opts } = chartControls(params, varying, () => { for (const c of board.cards.values()) if (c.mounted) board.draw(c); }, up);
  view.append(el("h3", { text: "overlaid charts" }), bar, holder);
  up.show(view);
  board = new ChartBoard(holder, rowsForCharts, mkeys, opts, Object.fromEntries(runs.map((r) => [r.id, r.summaries])));
  return () => board.destroy();
}
