// Compare 2–10 runs: config diff (only differences by default), structure diff,
// fingerprint diff, final/best metrics with deltas against the first run, overlaid charts.
import { api, el, fmt, num, setParams, varyingKeys } from "./util.js";
import { ChartBoard, chartControls } from "./charts.js";

const ABSENT = "(absent)";

function delta(v, base) {
  v = num(v); base = num(base);
  if (typeof v !== "number" || typeof base !== "number" || !Number.isFinite(v) || !Number.isFinite(base)) return "";
  const d = v - base;
  if (d === 0) return " (±0)";
  return ` (${d > 0 ? "+" : ""}${fmt(d)})`;
}

export async function renderCompare(view, params) {
  const ids = (params.get("runs") || "").split(",").filter(Boolean).map(Number);
  if (ids.length < 2 || ids.length > 10) {
    view.append(el("p", { class: "error", testid: "error", text: `Compare takes 2 to 10 runs, got ${ids.length}.` }));
    return null;
  }
  const runs = await Promise.all(ids.map((id) => api(`run/${id}`)));
  const onlyDiff = params.get("all") !== "1";
  view.append(el("h2", { text: `Compare ${runs.map((r) => "#" + r.id).join(", ")}` }));
  const head = () => el("tr", {}, el("th", { text: "key" }), runs.map((r) => el("th", {}, el("a", { href: `#/run/${r.id}`, text: `#${r.id}` }))));

  // ------------------------------------------------------------ config
  const toggle = el("label", {}, el("input", { type: "checkbox", testid: "only-diff", checked: onlyDiff,
    onchange: (e) => { setParams({ all: e.target.checked ? "" : "1" }); window.dispatchEvent(new HashChangeEvent("hashchange")); } }), " only differences");
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.config)))].sort();
  const same = (k) => runs.every((r) => JSON.stringify(r.config[k]) === JSON.stringify(runs[0].config[k]) && (k in r.config) === (k in runs[0].config));
  const shownKeys = onlyDiff ? keys.filter((k) => !same(k)) : keys;
  const configTable = el("table", { class: "grid diff", testid: "config-diff" }, head(),
    shownKeys.map((k) => el("tr", { class: same(k) ? "" : "differs", testid: "diff-row" }, el("td", { class: "mono", text: k }),
      runs.map((r) => el("td", { text: k in r.config ? fmt(r.config[k]) : ABSENT })))));
  view.append(el("section", { class: "box" }, el("h3", {}, "config ", toggle,
    el("span", { class: "muted", text: ` ${keys.length - keys.filter((k) => !same(k)).length} of ${keys.length} keys equal` })),
    shownKeys.length ? configTable : el("p", { class: "muted", testid: "config-identical", text: "configs are identical" })));

  // ------------------------------------------------------------ structure
  const typeKeys = [...new Set(runs.flatMap((r) => Object.keys(r.types)))].sort();
  const structDiff = typeKeys.filter((k) => runs.some((r) => r.types[k] !== runs[0].types[k]));
  const hashes = new Set(runs.map((r) => r.hash));
  view.append(el("section", { class: "box", testid: "structure-diff" }, el("h3", { text: "structure (keys and types)" }),
    el("p", { text: hashes.size === 1 ? "identical structure (same structural hash)" : `${hashes.size} different structures` }),
    structDiff.length ? el("table", { class: "grid diff" }, head(), structDiff.map((k) => el("tr", { class: "differs" },
      el("td", { class: "mono", text: k }), runs.map((r) => el("td", { text: r.types[k] ?? ABSENT }))))) : null));

  // ------------------------------------------------------------ fingerprints
  const fp = runs.map((r) => new Map(r.fingerprints.map((f) => [`${f.trace} (${f.type})`, f.fingerprint])));
  const traces = [...new Set(fp.flatMap((m) => [...m.keys()]))].sort();
  const changed = traces.filter((t) => fp.some((m) => m.get(t) !== fp[0].get(t)));
  view.append(el("section", { class: "box", testid: "fingerprint-diff" }, el("h3", { text: "code fingerprints" }),
    el("p", { text: traces.length ? `${changed.length} of ${traces.length} traced functions differ` : "no fingerprints recorded" }),
    changed.length ? el("table", { class: "grid diff" }, head(), changed.map((t) => el("tr", { class: "differs" },
      el("td", { class: "mono", text: t }), fp.map((m) => el("td", { class: "mono", text: (m.get(t) || ABSENT).slice(0, 12) }))))) : null));

  // ------------------------------------------------------------ metrics
  const mkeys = [...new Set(runs.flatMap((r) => r.metric_keys))].sort();
  const rows = [];
  for (const k of mkeys) {
    for (const [field, label] of [["last", "final"], ["min", "min"], ["max", "max"]]) {
      const base = runs[0].summaries[k]?.[field];
      rows.push(el("tr", {}, el("td", { class: "mono", text: `${k} ${label}` }), runs.map((r, i) => {
        const v = r.summaries[k]?.[field];
        return el("td", { class: "num", text: v === undefined ? ABSENT : fmt(num(v)) + (i ? delta(v, base) : "") });
      })));
    }
  }
  view.append(el("section", { class: "box", testid: "metric-compare" }, el("h3", { text: "metrics (deltas against the first run)" }),
    mkeys.length ? el("table", { class: "grid" }, head(), rows) : el("p", { class: "muted", text: "no metrics" })));

  // ------------------------------------------------------------ charts
  if (!mkeys.length) return null;
  const rowsForCharts = runs.map((r) => ({ id: r.id, config: r.config, start: r.start, status: r.status, hash: r.hash }));
  const { varying } = varyingKeys(rowsForCharts);
  let board = null;
  const holder = el("div");
  const { bar, opts } = chartControls(params, varying, () => { for (const c of board.cards.values()) if (c.mounted) board.draw(c); });
  view.append(el("h3", { text: "overlaid charts" }), bar, holder);
  board = new ChartBoard(holder, rowsForCharts, mkeys, opts, Object.fromEntries(runs.map((r) => [r.id, r.summaries])));
  return () => board.destroy();
}
