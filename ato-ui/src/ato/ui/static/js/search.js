// Tracked searches: the list of studies, and for one study the successive-halving ladder
// (per bracket: a column per rung, each trial a dot at its budget — promoted blue, stopped
// hollow, the last rung's trials green and its best one larger and amber —, the threshold
// of each rung, lines following the survivors) and the
// objective history with the best so far.
import { api, color, el, exact, fmt, num, plural, UrlParams } from "./util.js";
import { linearRange, scaledTickLabels, scaleDown, yExponentOf } from "./charts.js";

/* global uPlot */
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// The full value of a rounded number, for a tooltip (fmt's text when nothing was rounded).
const full = (v) => exact(v) ?? fmt(v);

// An SVG text whose number is rounded, with the full value as its tooltip (<title>).
function numText(attrs, v) {
  const node = svg("text", attrs, fmt(v));
  if (exact(v) !== null) node.append(svg("title", {}, exact(v)));
  return node;
}

// Up to about n round values strictly between lo and hi (1, 2 or 5 times a power of ten
// apart), for the ticks between an axis's two labelled ends.
export function innerTicks(lo, hi, n) {
  if (!(hi > lo) || !Number.isFinite(hi - lo)) return [];
  const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v < hi; v += step) {
    const r = Number(v.toPrecision(12));  // 0.30000000000000004 is 0.3
    // not on or beside an end, where its label would overlap that end's
    if (r - lo > step / 3 && hi - r > step / 3) out.push(r);
  }
  return out;
}

export async function renderSearch(view, study, params = new URLSearchParams()) {
  // neither page takes a parameter (but the header's project): any other one is named
  const up = new UrlParams(params).takes();
  if (!study) {
    // the header's project picks the searches of that project (all of them without one)
    const project = params.get("project") || "";
    const studies = (await api("studies")).studies.filter((s) => !project || s.project === project);
    view.append(el("h2", { text: "Searches" }));
    up.show(view);
    if (!studies.length) {
      view.append(el("p", { class: "muted", testid: "no-studies", text: `No tracked searches${
        project ? ` in project ${project}` : ""} (runs tagged study:<id>).` }));
      return null;
    }
    view.append(el("table", { class: "grid", testid: "studies" }, el("tr", {}, ["study", "project", "trials"].map((h) => el("th", { text: h }))),
      studies.map((s) => el("tr", {}, el("td", {}, el("a", { href: `#/search/${encodeURIComponent(s.study)}`, text: s.study, testid: "study-link" })),
        el("td", { text: s.project }),
        el("td", { class: "num", text: s.trials + (s.final ? ` (+ ${s.final} final)` : "") })))));
    return null;
  }
  const data = await api("study", { study });
  up.show(view);
  const trials = data.trials.map((t) => ({ ...t, objective: num(t.objective) }));
  const better = data.mode === "max" ? (a, b) => a > b : (a, b) => a < b;
  view.append(el("h2", { text: `Search ${study}` }),
    el("p", { class: "muted", testid: "study-summary" },
      `${data.algorithm ? data.algorithm + " · " : ""}${plural(trials.length, "trial")} · objective ${data.mode === "max" ? "maximised" : "minimised"} (inferred from promotions)`,
      data.final.length ? [" · re-evaluated winner: ", data.final.map((id) => el("a", { href: `#/run/${id}`, text: `#${id}` }))] : null));

  const brackets = new Map();
  for (const t of trials) {
    const b = t.bracket ?? "0";
    if (!brackets.has(b)) brackets.set(b, []);
    brackets.get(b).push(t);
  }
  const ladder = el("div", { class: "ladder", testid: "ladder" });
  view.append(ladder);
  const summaryRows = [], notes = [];
  for (const [b, members] of [...brackets].sort((x, y) => String(x[0]).localeCompare(String(y[0]), undefined, { numeric: true }))) {
    const rungs = [...new Set(members.map((t) => t.rung ?? 0))].sort((x, y) => x - y);
    const vals = members.map((t) => t.objective).filter((v) => typeof v === "number" && Number.isFinite(v));
    const lo = vals.length ? Math.min(...vals) : 0, hi = vals.length ? Math.max(...vals) : 1;
    const W = Math.max(360, 170 * rungs.length + 60), H = 300, L = 60, R = 10, T = 34, B = 40;
    const x = (r) => L + ((rungs.indexOf(r) + 0.5) * (W - L - R)) / rungs.length;
    const y = (v) => (hi === lo ? (T + H - B) / 2 : H - B - ((v - lo) / (hi - lo)) * (H - B - T));
    const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-testid": "ladder-bracket", role: "img" });
    root.append(svg("text", { x: 6, y: 16, class: "lbl" }, `bracket ${b}`));
    root.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
    // the objective axis: its ends, and round values between them (a tick on each)
    root.append(numText({ x: L - 6, y: y(hi) + 4, "text-anchor": "end", class: "tick", "data-testid": "ladder-hi" }, hi));
    root.append(numText({ x: L - 6, y: y(lo) + 4, "text-anchor": "end", class: "tick", "data-testid": "ladder-lo" }, lo));
    for (const v of innerTicks(lo, hi, 5)) {
      root.append(svg("line", { x1: L - 3, x2: L, y1: y(v), y2: y(v), class: "axis" }));
      root.append(numText({ x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "tick", "data-testid": "ladder-tick" }, v));
    }
    // survivors: a line from each trial to its promoted successor (same config at rung + 1)
    const at = new Map(members.map((t) => [`${t.config_hash}|${t.rung}`, t]));
    for (const t of members) {
      const next = at.get(`${t.config_hash}|${(t.rung ?? 0) + 1}`);
      if (t.promoted && next && Number.isFinite(t.objective) && Number.isFinite(next.objective)) {
        root.append(svg("line", { x1: x(t.rung ?? 0), y1: y(t.objective), x2: x(next.rung), y2: y(next.objective), class: "survivor" }));
      }
    }
    // the bracket's last rung reached: its trials were not stopped, and the best of them
    // is the bracket's winner
    const top = rungs[rungs.length - 1];
    // (an infinite objective competes: a search that returned inf chose it)
    const finished = members.filter((t) => (t.rung ?? 0) === top && !t.promoted && typeof t.objective === "number" && !Number.isNaN(t.objective));
    const winner = finished.length ? finished.reduce((a, t) => (better(t.objective, a.objective) ? t : a)) : null;
    const role = (t) => (t === winner ? "winner" : t.promoted ? "promoted" : (t.rung ?? 0) === top ? "finished" : "stopped");
    for (const r of rungs) {
      const inRung = members.filter((t) => (t.rung ?? 0) === r);
      const budget = inRung.find((t) => t.budget !== null)?.budget;
      const up = inRung.filter((t) => t.promoted && Number.isFinite(t.objective)).map((t) => t.objective);
      const down = inRung.filter((t) => !t.promoted && Number.isFinite(t.objective)).map((t) => t.objective);
      let threshold = null;
      if (up.length && down.length) {
        const worstUp = up.reduce((a, v) => (better(a, v) ? v : a));
        const bestDown = down.reduce((a, v) => (better(v, a) ? v : a));
        threshold = (worstUp + bestDown) / 2;
        root.append(svg("line", { x1: x(r) - 40, x2: x(r) + 40, y1: y(threshold), y2: y(threshold), class: "threshold" }));
      }
      root.append(svg("text", { x: x(r), y: H - B + 16, "text-anchor": "middle", class: "tick" }, `rung ${r}`));
      const budgetText = svg("text", { x: x(r), y: H - B + 30, "text-anchor": "middle", class: "tick" }, `budget ${fmt(budget)}`);
      if (exact(budget) !== null) budgetText.append(svg("title", {}, `budget ${exact(budget)}`));
      root.append(budgetText);
      inRung.forEach((t, i) => {
        if (!Number.isFinite(t.objective)) return;
        const jitter = ((i % 7) - 3) * 3;
        const kind = role(t);
        const dot = svg("circle", { cx: x(r) + jitter, cy: y(t.objective), r: kind === "winner" ? 7 : 5, class: kind,
                                   "data-testid": "trial-" + kind, "data-run": t.run });
        const said = { winner: "best of the bracket", finished: "reached the last rung", promoted: "promoted", stopped: "stopped" }[kind];
        dot.append(svg("title", {}, `run #${t.run} · trial ${t.key ?? "?"} · objective ${full(t.objective)} · ${said}`));
        dot.addEventListener("click", () => { location.hash = `#/run/${t.run}`; });
        root.append(dot);
      });
      summaryRows.push(el("tr", { testid: "ladder-rung" }, el("td", { text: b }), el("td", { class: "num", text: r }),
        el("td", { class: "num", text: fmt(budget), title: exact(budget) }), el("td", { class: "num", text: inRung.length }),
        el("td", { class: "num", text: inRung.filter((t) => t.promoted).length }),
        el("td", { class: "num", text: fmt(threshold), title: exact(threshold) })));
    }
    ladder.append(root);
    // trials without a finite objective (failed: none; diverged: inf or nan) have no
    // place on the axis: each is named under the bracket, the winner among them too
    const undrawn = members.filter((t) => !Number.isFinite(t.objective));
    if (undrawn.length) {
      const what = (t) => `#${t.run} (rung ${t.rung ?? 0}: ${t.objective === null || t.objective === undefined ? "failed, no objective" : "objective " + full(t.objective)}${t === winner ? ", best of the bracket" : ""})`;
      notes.push(el("p", { class: "chart-note", testid: "ladder-undrawn" },
        `bracket ${b}: ${plural(undrawn.length, "trial")} without a finite objective not drawn: ${undrawn.map(what).join(", ")}`));
    }
  }
  view.append(...notes);
  view.append(el("div", { class: "legend-row" }, el("span", { class: "dot promoted" }), " promoted ", el("span", { class: "dot stopped" }), " stopped ",
    el("span", { class: "dot finished" }), " reached the last rung ", el("span", { class: "dot winner" }), " best of the bracket ",
    el("span", { class: "dash" }), " threshold (between the worst promoted and the best stopped trial)"));
  view.append(el("table", { class: "grid", testid: "ladder-table" }, el("tr", {}, ["bracket", "rung", "budget", "trials", "promoted", "threshold"].map((h) => el("th", { text: h }))), summaryRows));

  // objective history in trial order, with the best so far
  const xs = [], ys = [], best = [];
  let cur = null;
  const skipped = [];
  trials.forEach((t, i) => {
    if (!Number.isFinite(t.objective)) { skipped.push(t); return; }
    if (cur === null || better(t.objective, cur)) cur = t.objective;
    xs.push(i); ys.push(t.objective); best.push(cur);
  });
  const box = el("section", { class: "card", testid: "objective-history" }, el("header", {}, el("h3", { text: "objective by trial" })));
  view.append(box);
  if (xs.length) {
    // objectives of any magnitude (1e300 left the axis unlabelled): drawn divided by 10^k
    // when far out, as the charts do; ticks and hover values are the objectives themselves
    const k = yExponentOf([xs, ys, best]);
    const drawn = k ? [ys, best].map((col) => col.map((v) => scaleDown(v, k))) : [ys, best];
    const raw = [null, ys, best];
    const hover = (u, v, si, idx) => (v === null || idx === null ? "–" : full(raw[si][idx]));
    const span = (u) => Math.abs((u.scales.y.max ?? 0) - (u.scales.y.min ?? 0));
    new uPlot({ width: Math.min(900, view.clientWidth || 900), height: 240,
      // the hover values in full (the ticks round)
      series: [{ label: "trial" }, { label: "objective", stroke: color(0), width: 0, points: { show: true, size: 6, fill: color(0) }, value: hover },
               { label: "best so far", stroke: color(3), width: 2, value: hover }],
      scales: { x: { time: false }, y: { range: (u, min, max) => linearRange(min, max) } },
      axes: [{ incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], values: (u, splits) => splits.map(String) },
             { values: (u, splits) => {
               const labels = scaledTickLabels(splits, span(u), k);
               box.dataset.yticks = JSON.stringify(labels);
               return labels;
             } }],
    }, [xs, ...drawn], box);
  }
  if (skipped.length) {
    box.append(el("p", { class: "chart-note", testid: "history-undrawn" },
      `${plural(skipped.length, "trial")} without a finite objective not drawn (nor counted in the best so far): ` +
      skipped.map((t) => `#${t.run} ${t.objective === null || t.objective === undefined ? "failed" : full(t.objective)}`).join(", ")));
  }
  ladder.dataset.ready = "1";
  return null;
}
