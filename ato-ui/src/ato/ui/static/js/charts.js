// Metric chart cards (uPlot): one card per metric key, mounted when scrolled into view,
// x = step / wall time / relative time, log scale, EMA smoothing, grouping with a min/max
// band, server-side reduction with a "N → M points" badge, zoom re-querying the range at
// full resolution, PNG export and live points over Server-Sent Events.
import { api, clear, color, download, el, exact, f64, fmt, fmtTime, go, isBookkeeping, liveSource, notFound, num, plural, setParams, SEED_KEYS, tickLabel, tickLabels,
         TZ, UrlParams, varyingKeys } from "./util.js";

/* global uPlot */

// TensorBoard's smoothing: an exponential moving average debiased by 1 - w^n.
export function ema(values, weight) {
  if (!(weight > 0)) return values;
  const out = new Array(values.length);
  let last = 0, n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) { out[i] = v; continue; }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

// A series' values with every non-finite one (inf, -inf, NaN) made a gap (null): uPlot
// derives the y range from all values, so one inf left no y axis and no curve. Returns
// {y, skipped: [{step, value}]}; the skipped values are named in a note on the card.
// With `log`, a value <= 0 (which a log axis cannot draw) is a gap too, listed apart in
// `nonPositive: [{step, value}]`.
export function finiteOnly(steps, values, log = false) {
  const skipped = [], nonPositive = [];
  const y = values.map((v, i) => {
    if (v === null || v === undefined) return null;
    if (Number.isFinite(v)) {
      if (!log || v > 0) return v;
      nonPositive.push({ step: steps[i], value: fmt(v), full: exact(v) ?? fmt(v) });
      return null;
    }
    skipped.push({ step: steps[i], value: Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf" });
    return null;
  });
  return { y, skipped, nonPositive };
}

// The card's note naming the non-finite values not drawn: "2 non-finite values not drawn:
// #8 step 1 = inf, #8 step 0 = nan" (the first few; all of them in its title).
// On a log axis the values <= 0 get a sentence of their own ("2 values ≤ 0 not drawn on the
// log axis: #3 step 100 = -1e29, …"), and a card with nothing left to draw says so.
// A reduced card (`reduced`) holds the first non-finite value of each bucket, not every
// one: its note says it counts the points drawn.
function nonFiniteNote(card, skipped, nonPositive = [], nothingLeft = false, reduced = false) {
  card.note.textContent = "";
  card.note.hidden = !skipped.length && !nonPositive.length;
  card.node.dataset.nonfinite = String(skipped.length);
  card.node.dataset.nonpositive = String(nonPositive.length);
  if (card.note.hidden) return;
  // the note rounds as the page does; its tooltip lists every value in full
  const listed = (list, field = "value") => list.map((s) => `#${s.run} step ${s.step} = ${s[field] ?? s.value}`);
  const parts = [], titles = [];
  if (skipped.length) {
    const items = listed(skipped);
    // not one finite value (and none dropped by the log axis alone): an empty plot says why
    const allNaN = skipped.every((s) => s.value === "nan" || Number.isNaN(s.value));
    const empty = nothingLeft && !nonPositive.length;
    card.node.dataset.nothing = empty ? "1" : "";
    parts.push((empty ? `nothing to draw: every value is ${allNaN ? "NaN" : "non-finite"}; ` : "") +
      `${plural(skipped.length, "non-finite value")} not drawn` +
      (reduced ? " (among the points kept by the reduction; zoom in for every one)" : "") + ": " +
      items.slice(0, 3).join(", ") + (items.length > 3 ? ", …" : ""));
    titles.push(...items);
  }
  if (nonPositive.length) {
    const items = listed(nonPositive);
    titles.push(...listed(nonPositive, "full"));
    parts.push((nothingLeft ? "no value > 0, nothing to draw on the log axis (untick log y): " : "") +
      `${nonPositive.length} ${nonPositive.length === 1 ? "value" : "values"} ≤ 0 not drawn on the log axis: ` +
      items.slice(0, 3).join(", ") + (items.length > 3 ? ", …" : ""));
  }
  card.note.textContent = parts.join("; ");
  card.note.title = titles.join("\n");
}

// The ticks (and grid lines) of a log axis, in exponents: the whole decades from `e0` to
// `e1` (log10 of the axis' ends), every k-th so that there are at most 8 however many
// decades the data spans, k a round number and each tick a multiple of it
// (1e-300, 1e-250, … 1: 10^0 is a tick whenever it is on the axis).
export function decadeSplits(e0, e1) {
  if (!(Number.isFinite(e0) && Number.isFinite(e1)) || e1 < e0) return [];
  const lo = Math.ceil(e0 - 1e-9), hi = Math.floor(e1 + 1e-9);
  const need = (hi - lo + 1) / 8;
  const stride = [1, 2, 3, 5, 10, 20, 25, 50, 100, 200].find((k) => k >= need) || Math.ceil(need);
  const out = [];
  for (let e = Math.ceil(lo / stride) * stride; e <= hi; e += stride) out.push(e);
  return out;
}

// A log axis' range in exponents: whole decades around log10 of the values (at least one).
export function decadeRange(min, max) {
  if (min === null || max === null || min === undefined || max === undefined) return [0, 1];
  return [Math.floor(min), Math.max(Math.ceil(max), Math.floor(min) + 1)];
}

// The label of the decade 10^e: as tickLabel writes that number ("0.001", "1e-4", "1e6"),
// and in words past what a double holds (10^-324 is 0, 10^309 is Infinity).
export function decadeLabel(e) {
  const v = 10 ** e;
  return v > 0 && Number.isFinite(v) && v >= 1e-300 ? tickLabel(v) : `1e${e}`;
}

// x * 10^k as a tick label, from the digits of x and the exponent k (multiplying would
// round a denormal: 2e-322 read 1.976e-322).
export function scaledLabel(x, k) {
  if (x === 0) return "0";
  const [m, e] = Number(x.toPrecision(12)).toExponential().split("e");
  return `${m}e${Number(e) + k}`;
}

// The labels of a linear axis' ticks drawn divided by 10^k (splits and span as drawn):
// tickLabels' for k = 0, else each tick times 10^k written from its digits.
export function scaledTickLabels(splits, span, k) {
  if (k === 0) return tickLabels(splits, span);
  return splits.map((v) => (v === null || v === undefined ? "" : Math.abs(v) < span * 1e-9 ? "0" : scaledLabel(v, k)));
}

// v / 10^k, through 1e300 when 10^k alone would be a denormal (or 0).
export const scaleDown = (v, k) => (k >= -300 ? v / 10 ** k : (v * 1e300) / 10 ** (k + 300));

// The step axis' tick spacings: whole steps (a 2-step run was ticked at 0.1, 0.2, …).
const STEP_INCRS = [];
for (let p = 1; p <= 1e18; p *= 10) STEP_INCRS.push(p, 2 * p, 5 * p);

// The exponent k of the power of ten the y values of `data` (uPlot's columns, x first)
// are divided by to be drawn: 0 unless their largest magnitude is under 1e-9 or 1e12 and
// over.
export function yExponentOf(data) {
  let most = 0;
  for (let i = 1; i < data.length; i++) {
    for (const v of data[i]) if (v !== null && v !== undefined && Number.isFinite(v) && Math.abs(v) > most) most = Math.abs(v);
  }
  if (!(most > 0) || (most >= 1e-9 && most < 1e12)) return 0;
  return Math.floor(Math.log10(most));
}

// The indices of a column's isolated values: a value whose nearest neighbours of its own
// (skipping the x values only other series have, `undefined`) are gaps or the ends. With
// points hidden (a dense series) uPlot draws nothing for them: a finite value between
// two NaNs was invisible.
export function isolatedIndices(col) {
  const out = [];
  let prev = null, prevIdx = -1, prevPrev = null;  // the last two own entries
  for (let i = 0; i <= col.length; i++) {
    const v = i < col.length ? col[i] : null;
    if (v === undefined) continue;
    if (prevIdx >= 0 && prev !== null && prevPrev === null && v === null) out.push(prevIdx);
    prevPrev = prevIdx >= 0 ? prev : null;
    prev = v; prevIdx = i;
  }
  return out;
}

// The y range of a linear axis holding `min`..`max`: a tenth of the span added on each
// side (at 0 when that would cross it from one side: a loss stays ≥ 0), rounded out to a
// hundredth of the span's power of ten. Any magnitude: uPlot's own range rounds to 24
// decimals, which drew a 1e-25 series flat at 0 on a 0..100 axis. A constant series
// gets a tenth of its size on each side (1 when it is 0).
export function linearRange(min, max) {
  if (min === null || max === null || min === undefined || max === undefined) return [null, null];
  if (!(Number.isFinite(min) && Number.isFinite(max))) return [min, max];
  const span = max - min;
  if (!(span > 0) || !Number.isFinite(span)) {
    const pad = Math.abs(min) / 10 || 1;
    return Number.isFinite(min - pad) && Number.isFinite(max + pad) ? [min - pad, max + pad] : [min, max];
  }
  let lo = min - span / 10, hi = max + span / 10;
  if (min >= 0 && lo < 0) lo = 0;
  if (max <= 0 && hi > 0) hi = 0;
  if (!Number.isFinite(lo)) lo = min;
  if (!Number.isFinite(hi)) hi = max;
  const q = 10 ** (Math.floor(Math.log10(span)) - 2);
  // rounded only where a double can hold the multiples of q (not for 5 + 1e-15)
  if (q > 0 && Number.isFinite(q) && Math.max(Math.abs(lo), Math.abs(hi)) / q < 1e15) {
    const rlo = Math.floor(lo / q) * q, rhi = Math.ceil(hi / q) * q;
    if (Number.isFinite(rlo) && rlo <= min) lo = rlo;
    if (Number.isFinite(rhi) && rhi >= max) hi = rhi;
  }
  return [lo, hi];
}

// The ticks of a linear axis from `min` to `max` at uPlot's chosen increment `incr`, each
// k * incr (uPlot's own splits add the increment up and round it to its decimals: on a
// nearly constant series — 5 + 1e-9 — that sum stopped moving, and the page hung in an
// "Invalid array length"). At most 50; none finer than the numbers can tell apart.
export function linearSplits(min, max, incr) {
  if (!(Number.isFinite(min) && Number.isFinite(max) && incr > 0) || max < min) return [];
  const scale = Math.max(Math.abs(min), Math.abs(max));
  if (incr < scale * 1e-15) return min === max ? [min] : [min, max];
  const k0 = Math.ceil(min / incr - 1e-9), k1 = Math.floor(max / incr + 1e-9);
  const out = [];
  for (let k = k0; k <= k1 && out.length < 50; k++) out.push(k * incr);
  return out;
}

// Wall-time tick labels written as everywhere else on the page (fmtTime's
// "2026-11-30 21:00:50"), shortened: the time of day alone when every tick is on one day,
// seconds only when the ticks are closer than a minute, and sub-second digits (".5",
// ".25", ".125") when they are closer than a second — or, with one tick, when the axis
// `span` (seconds) is under a second — as many as it takes for each such label to be its
// tick exactly (".25", not ".2"), and for no two labels to read alike.
export function wallTicks(splits, span = 0) {
  const shown = splits.filter((t) => t !== null && t !== undefined);
  let spacing = Infinity;
  for (let i = 1; i < shown.length; i++) spacing = Math.min(spacing, Math.abs(shown[i] - shown[i - 1]));
  if (shown.length < 2 && span > 0) spacing = span;
  // from the spacing in whole milliseconds (0.1 s apart is often 0.09999990463 s apart)
  const ms = Math.max(1, Math.round(spacing * 1000));
  let digits = spacing >= 1 ? 0 : ms % 100 === 0 ? 1 : ms % 10 === 0 ? 2 : 3;
  let full;
  for (;;) {
    full = splits.map((t) => (t === null || t === undefined ? "" : fmtTime(t, digits)));
    const exactAt = shown.every((t) => Math.round(t * 1000) % 10 ** (3 - digits) === 0);
    if (digits >= 3 || ((digits === 0 || exactAt) && new Set(full.filter(Boolean)).size === full.filter(Boolean).length)) break;
    digits++;
  }
  const days = new Set(full.filter(Boolean).map((f) => f.slice(0, 10)));
  const seconds = digits > 0 || spacing < 60 || full.some((f) => f && f.slice(17, 19) !== "00");
  return full.map((f) => {
    if (!f) return "";
    const time = seconds ? f.slice(11) : f.slice(11, 16);
    return days.size > 1 ? `${f.slice(0, 10)} ${time}` : time;
  });
}

// uPlot's cursor.dataIdx for a joined table: series `i` snaps to its nearest non-null
// point (by x distance) only inside its own x extent (its first to last non-null index);
// outside it the hovered index is returned, whose value is null — the legend shows "–",
// never a run's first value before it started or its last value after it ended.
// The extents are computed once per data set (u.data), not per mouse move.
export function extentDataIdx(u, i, closest) {
  if (i === 0 || closest === null || closest === undefined) return closest;
  if (u._atoExtentsOf !== u.data) {
    u._atoExtentsOf = u.data;
    u._atoExtents = u.data.map((ys, j) => {
      if (j === 0) return null;
      let lo = 0, hi = ys.length - 1;
      while (lo < ys.length && (ys[lo] === null || ys[lo] === undefined)) lo++;
      while (hi >= 0 && (ys[hi] === null || ys[hi] === undefined)) hi--;
      return lo <= hi ? [lo, hi] : null;
    });
  }
  const ext = u._atoExtents[i], ys = u.data[i], xs = u.data[0];
  if (!ext || closest < ext[0] || closest > ext[1]) return closest;
  if (ys[closest] !== null && ys[closest] !== undefined) return closest;
  let l = closest - 1, r = closest + 1;
  while (l >= ext[0] && (ys[l] === null || ys[l] === undefined)) l--;
  while (r <= ext[1] && (ys[r] === null || ys[r] === undefined)) r++;
  // both exist: the extent's ends are non-null and closest lies strictly between them
  return xs[closest] - xs[l] <= xs[r] - xs[closest] ? l : r;
}

// A series {steps, values, times} folded in place to at most `budget` points, by the
// server's rule on consecutive points: the first point, then per bucket its finite
// minimum, finite maximum, last point and first non-finite point, in order. Used only
// between a live card's re-loads, so that what it draws never exceeds its budget; a spike
// is a bucket's minimum or maximum and stays drawn.
export function foldSeries(s, budget) {
  const n = s.steps.length;
  const buckets = Math.floor((budget - 1) / 4);
  if (n <= budget || buckets < 1) return;
  const width = Math.ceil((n - 1) / buckets);
  const keep = [0];
  for (let b = 1; b < n; b += width) {
    const end = Math.min(n, b + width);
    let lo = -1, hi = -1, bad = -1;
    for (let i = b; i < end; i++) {
      const v = s.values[i];
      if (typeof v !== "number" || !Number.isFinite(v)) { if (bad < 0) bad = i; continue; }
      if (lo < 0 || v < s.values[lo]) lo = i;
      if (hi < 0 || v > s.values[hi]) hi = i;
    }
    keep.push(...[...new Set([lo, hi, bad, end - 1])].filter((i) => i >= 0).sort((a, c) => a - c));
  }
  for (const f of ["steps", "values", "times"]) if (s[f].length === n) s[f] = keep.map((i) => s[f][i]);
  s.returned = keep.length;
}

// The group a run is drawn in; "noseed" groups runs equal but for a seed-named key and the
// search's __bookkeeping__ keys (a trial id or budget would split every group).
export function groupKey(run, mode) {
  if (!mode) return null;
  if (mode === "hash") return "hash " + String(run.hash || "?").slice(0, 10);
  if (mode === "noseed") {
    const c = Object.fromEntries(Object.entries(run.config).filter(([k]) => !SEED_KEYS.test(k) && !isBookkeeping(k)).sort());
    return JSON.stringify(c);
  }
  // the full value: two values that round alike (0.1234567, 0.1234568) are two groups
  if (mode.startsWith("c:")) { const v = run.config[mode.slice(2)]; return `${mode.slice(2)}=${exact(v) ?? fmt(v)}`; }
  return null;
}

// Mean and min/max over members, each linearly interpolated on the union of their x (a
// member adds nothing where it has a gap).
export function aggregate(members) {
  const xs = [...new Set(members.flatMap((m) => m.x))].sort((a, b) => a - b);
  const mean = [], lo = [], hi = [], at = [];
  const idx = members.map(() => 0);
  let before = null;  // the members whose extent holds the previous x
  for (const x of xs) {
    let s = 0, n = 0, mn = Infinity, mx = -Infinity;
    const holding = new Set();
    members.forEach((m, j) => {
      const X = m.x, Y = m.y;
      if (!X.length || x < X[0] || x > X[X.length - 1]) return;
      holding.add(j);
      while (idx[j] < X.length - 1 && X[idx[j] + 1] <= x) idx[j]++;
      const i = idx[j];
      let v = Y[i];
      // between two points: interpolated, unless either is a gap (a null counted as 0
      // dragged the mean and the band below every member)
      if (X[i] !== x && i + 1 < X.length) {
        v = Y[i] === null || Y[i + 1] === null ? null : Y[i] + ((Y[i + 1] - Y[i]) * (x - X[i])) / (X[i + 1] - X[i]);
      }
      if (v === null || !Number.isFinite(v)) return;
      s += v; n++; mn = Math.min(mn, v); mx = Math.max(mx, v);
    });
    // members one after another (runs overlaid by wall time): no member spans the space
    // between the last x of some and the first of the others, so the mean breaks there
    // rather than drawing a line no run took
    if (before && before.size && holding.size && ![...holding].some((j) => before.has(j))) {
      at.push((at[at.length - 1] + x) / 2); mean.push(null); lo.push(null); hi.push(null);
    }
    before = holding;
    at.push(x); mean.push(n ? s / n : null); lo.push(n ? mn : null); hi.push(n ? mx : null);
  }
  return { xs: at, mean, lo, hi };
}

export class ChartBoard {
  // runs: run rows ({id, config, start, status, hash}); keys: metric keys; opts: {x, log,
  // smooth, group, legend (config keys), traces}; summaries: {run: {key: summary}}.
  constructor(container, runs, keys, opts, summaries = {}) {
    this.container = container;
    this.runs = runs;
    this.byId = new Map(runs.map((r, i) => [r.id, { ...r, color: color(i) }]));
    this.keys = keys;
    this.opts = opts;
    this.cards = new Map();
    this.summaries = summaries;
    this.onStatus = null;  // (run id, status) after a status event, set by the page
    // boot.js's early series of the page's first row of cards (a promise of a Map, or of
    // null): the first board of a page load takes it, for its cards' first loads.
    this.prefetched = window.__atoEarlySeries || null;
    window.__atoEarlySeries = null;
    this.grid = el("div", { class: "cards", testid: "chart-cards" });
    container.append(this.grid);
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) this.mount(e.target.dataset.key);
    }, { rootMargin: "200px" });
    for (const key of keys) {
      const card = this.makeCard(key);
      this.grid.append(card.node);
      this.observer.observe(card.node);
    }
    // The cards already in view load now, not at the observer's first callback (after
    // the page's first rendering).
    if (container.isConnected) {
      for (const card of this.cards.values()) {
        if (card.node.getBoundingClientRect().top > innerHeight + 200) break;
        this.mount(card.key);
      }
    }
    this.startLive();
  }

  makeCard(key) {
    const badge = el("span", { class: "badge", testid: "points-badge", title: "points stored → points drawn (reduced on the server, min/max/last per bucket)" });
    const body = el("div", { class: "chart-body" });
    const note = el("p", { class: "chart-note muted", testid: "nonfinite-note", hidden: true });
    const node = el("section", { class: "card", testid: "chart-card" },
      el("header", {}, el("h3", { text: key, title: key }), badge,
        el("button", { class: "small", testid: "reset-zoom", text: "reset zoom", onclick: () => this.load(card) }),
        el("button", { class: "small", testid: "export-png", text: "PNG", onclick: () => this.png(card) })),
      body, note);
    node.dataset.key = key;
    const card = { key, node, body, badge, note, series: new Map(), plot: null, range: null, mounted: false };
    this.cards.set(key, card);
    return card;
  }

  mount(key) {
    const card = this.cards.get(key);
    if (!card || card.mounted) return;
    card.mounted = true;
    this.observer.unobserve(card.node);
    this.load(card);
  }

  // The card's series from the server: the whole runs, or the steps of `range`, reduced to
  // its point budget (card.budget, the max_points asked for: about two per pixel).
  // The latest call wins; points streamed while it was on its way are kept after it.
  async load(card, range = null) {
    card.range = range;
    const token = card.loadToken = (card.loadToken || 0) + 1;
    const width = Math.max(card.body.clientWidth, 300);
    // about two points per pixel; boot.js's early request's budget when within 10 %
    const early = window.__atoChartBudget;
    const budget = early && Math.abs(early - width * 2) <= width * 0.2 ? early : Math.round(width * 2);
    const prefetched = !range && token === 1 && this.prefetched ? await this.prefetched : null;
    const data = await api("series", {
      runs: [...this.byId.keys()].join(","), key: card.key, max_points: budget,
      step_min: range ? range[0] : undefined, step_max: range ? range[1] : undefined,
      times: this.opts.x === "step" ? "0" : undefined, format: "f64" }, prefetched);
    if (token !== card.loadToken) return;  // a later load (zoom, reset, live) replaces this one
    card.budget = budget;
    card.node.dataset.budget = String(budget);
    card.loadedAt = performance.now();
    card.withTimes = this.opts.x !== "step";
    const old = card.series;
    card.series = new Map();  // a run with no point in the range draws nothing, not its old points
    for (const s of data.series) {
      card.series.set(s.run, { steps: f64(s.steps), values: f64(s.values), times: f64(s.times), total: s.total, returned: s.returned });
    }
    if (!range) {
      for (const [id, o] of old) {
        const s = card.series.get(id) || { steps: [], values: [], times: [], total: 0, returned: 0 };
        const last = s.steps.length ? s.steps[s.steps.length - 1] : -Infinity;
        const from = o.steps.findIndex((step) => step > last);
        if (from < 0 || !o.live) continue;
        this.append(card, id, o.steps.slice(from), o.values.slice(from), o.times.slice(from), s);
      }
    }
    card.node.dataset.livePending = card.reloadTimer || card.stale ? "1" : "0";
    this.draw(card);
  }

  // Streamed points appended to run `id`'s series of `card` (those past its last step).
  // A series that then exceeds the card's budget is folded to it at once and the card
  // re-loaded from the server (at most about once a second), as is a reduced series that
  // grew (its new points are not reduced as the server would): the badge and the points
  // come to match what a fresh load shows.
  append(card, id, steps, values, times, s = card.series.get(id)) {
    // a card over steps asked for no times (its series' times stay empty); one over time
    // cannot place points without theirs (kept from a card over steps): re-loaded instead
    const withTimes = !!card.withTimes;
    if (withTimes && !(times && times.length === steps.length)) { this.reloadSoon(card); return; }
    if (!s) s = { steps: [], values: [], times: [], total: 0, returned: 0 };
    card.series.set(id, s);
    let added = 0;
    steps.forEach((step, i) => {
      if (s.steps.length && step <= s.steps[s.steps.length - 1]) return;
      s.steps.push(step); s.values.push(num(values[i])); if (withTimes) s.times.push(times[i]);
      s.total++; s.returned++; added++;
    });
    if (!added) return;
    s.live = true;
    const budget = card.budget || Infinity;
    if (s.steps.length > budget) foldSeries(s, budget);
    if (s.total > s.returned) this.reloadSoon(card);
  }

  // Re-load `card` (keeping its zoom range) no sooner than a second after its last load;
  // calls meanwhile, or while that re-load is on its way, are folded into one more.
  // data-live-pending="1" on the card while one is due (a ready marker for tests).
  reloadSoon(card) {
    card.stale = true;
    card.node.dataset.livePending = "1";
    if (card.reloadTimer || card.reloading) return;
    const wait = Math.max(0, 1000 - (performance.now() - (card.loadedAt || 0)));
    card.reloadTimer = setTimeout(async () => {
      card.reloadTimer = null;
      card.stale = false;
      card.reloading = true;
      try {
        await this.load(card, card.range);
      } finally {
        card.reloading = false;
        if (card.stale && !this.closed) this.reloadSoon(card);
        else card.node.dataset.livePending = "0";
      }
    }, wait);
  }

  xOf(run, s) {
    if (this.opts.x === "wall") return s.times;
    if (this.opts.x === "rel") return s.times.map((t) => t - (run.start ?? s.times[0]));
    return s.steps;
  }

  draw(card) {
    if (this.opts.x !== "step" && !card.withTimes) { this.load(card, card.range); return; }
    const total = [...card.series.values()].reduce((a, s) => a + s.total, 0);
    const returned = [...card.series.values()].reduce((a, s) => a + s.returned, 0);
    card.badge.textContent = (total === returned ? plural(total, "point") : `${total.toLocaleString("en-US")} → ${plural(returned, "point")}`) +
      (card.range ? ` in steps ${card.range[0]}–${card.range[1]}` : "");
    card.badge.dataset.total = String(total);
    card.badge.dataset.returned = String(returned);
    const legendOf = (run) => {
      const extra = (this.opts.legend || []).map((k) => `${k}=${exact(run.config[k]) ?? fmt(run.config[k])}`).join(" ");
      return `#${run.id}` + (extra ? " " + extra : "");
    };
    // The legend's hover values: wall time in UTC as everywhere on the page, and every
    // digit of a value (the ticks and table cells round to ~6 significant digits).
    const tables = [], series = [this.opts.x === "wall"
      ? { label: `time (${TZ})`, value: (u, v) => (v === null || v === undefined ? "–" : fmtTime(v, 3)) }
      : this.opts.x === "rel"
        // seconds since the run's start, every digit (0.0015, not uPlot's rounded 0.002)
        ? { label: "seconds", value: (u, v) => (v === null || v === undefined ? "–" : exact(v) ?? fmt(v)) }
        : { label: "step" }];
    const bands = [];
    const smooth = Number(this.opts.smooth) || 0;
    const lines = [], skipped = [], nonPositive = [];
    let drawable = 0;
    for (const [id, s] of card.series) {
      const run = this.byId.get(id);
      if (!run || !s.steps.length) continue;
      const f = finiteOnly(s.steps, s.values, !!this.opts.log);
      for (const k of f.skipped) skipped.push({ run: id, ...k });
      for (const k of f.nonPositive) nonPositive.push({ run: id, ...k });
      drawable += f.y.filter((v) => v !== null).length;
      lines.push({ run, x: this.xOf(run, s), y: f.y });
    }
    nonFiniteNote(card, skipped, nonPositive, drawable === 0, returned < total);
    if (this.opts.group) {
      const groups = new Map();
      for (const l of lines) {
        const g = groupKey(l.run, this.opts.group);
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push({ ...l, y: ema(l.y, smooth) });
      }
      let gi = 0;
      for (const [g, members] of groups) {
        const a = aggregate(members);
        const c = color(gi++);
        // "config minus seed": named by the chosen legend keys (the seed's aside: it is what
        // differs within the group) and its runs; "group N" without legend keys
        const noseed = this.opts.group === "noseed";
        const named = (this.opts.legend || []).filter((k) => !SEED_KEYS.test(k))
          .map((k) => `${k}=${exact(members[0].run.config[k]) ?? fmt(members[0].run.config[k])}`).join(" ");
        const label = noseed ? `${named || `group ${gi}`} (${members.length === 1 ? "run" : "runs"} ${
          members.map((m) => "#" + m.run.id).join(" ")})` : g;
        const base = series.length;
        tables.push([a.xs, a.hi], [a.xs, a.lo], [a.xs, a.mean]);
        // The band's edges are drawn, but named only by the mean's legend entry (n=…).
        // a null in the aggregate is a break no member spans (spanGaps false); the other
        // groups' x values are undefined here, which uPlot draws through
        series.push({ label: `${label} max`, stroke: c + "55", width: 0.5, spanGaps: false, bandEdge: true },
                    { label: `${label} min`, stroke: c + "55", width: 0.5, spanGaps: false, bandEdge: true },
                    { label: members.length > 1 ? `${label} mean (n=${members.length})` : noseed ? label : `${label} (#${members[0].run.id} alone)`, stroke: c, width: 2, spanGaps: false });
        bands.push({ series: [base, base + 1], fill: c + "22" });
        if (this.opts.traces) for (const m of members) {
          tables.push([m.x, m.y]);
          series.push({ label: legendOf(m.run), stroke: c + "66", width: 0.8, spanGaps: false });
        }
      }
    } else {
      for (const l of lines) {
        if (smooth > 0 && lines.length <= 20) {
          tables.push([l.x, l.y]);
          series.push({ label: legendOf(l.run) + " raw", stroke: l.run.color + "40", width: 1, spanGaps: false });
        }
        tables.push([l.x, ema(l.y, smooth)]);
        series.push({ label: legendOf(l.run), stroke: l.run.color, width: 1.5, spanGaps: false });
      }
    }
    for (const sr of series.slice(1)) sr.value = (u, v) => (v === null || v === undefined ? "–" : exact(v) ?? fmt(v));
    // A run's line breaks at its null values (a non-finite value, or one <= 0 on a log
    // axis: spanGaps false), never at the steps where only other runs have points (the
    // join leaves those undefined, which uPlot draws through).
    let data = tables.length ? uPlot.join(tables) : [[]];
    // y as drawn. uPlot finds tick spacings only for numbers of about 1e-16 to 1e16 and
    // its log scale fails far out (1e-19 got the one tick "0", 1e40 no labels, 1 beside
    // 5e-324 a blank log plot). A log axis draws log10(v) on a linear scale, ticked at
    // whole decades (a value <= 0 is a gap); a linear one draws v / 10^k when the values
    // lie far outside. Ticks and hover values say the values themselves.
    const raw = data;
    const k = this.opts.log ? 0 : yExponentOf(data);
    card.yExp = k;
    if (this.opts.log) {
      data = data.map((col, i) => (i === 0 ? col : col.map((v) => (v === undefined ? v : v !== null && v > 0 ? Math.log10(v) : null))));
    } else if (k !== 0) {
      data = data.map((col, i) => (i === 0 ? col : col.map((v) => (v === null || v === undefined ? v : scaleDown(v, k)))));
    }
    if (this.opts.log || k !== 0) {
      for (const [i, sr] of series.entries()) if (i > 0) sr.value = (u, v, si, idx) => (v === null || v === undefined ? "–" : exact(raw[si][idx]) ?? fmt(raw[si][idx]));
    }
    // every series' isolated values drawn as points, whatever uPlot decides for the rest
    for (const [i, sr] of series.entries()) {
      if (i === 0) continue;
      const alone = isolatedIndices(data[i] || []);
      if (alone.length) sr.points = { ...(sr.points || {}), filter: (u, si, show) => (show ? null : alone) };
    }
    const width = Math.max(card.body.clientWidth, 300);
    const opts = {
      width, height: 260, series, bands,
      // The right edge leaves room for half the last x tick label, which is centred on its
      // tick ("1,000,000,000,000" at steps ~1e12 was cut at the edge); other sides: uPlot's.
      padding: [null, (u) => Math.max(16, Math.ceil(xLabelWidth(u, card.xLast) / 2) + 4), null, null],
      // wall-time ticks fall on UTC's minutes, hours and days (their labels are UTC too)
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      // One x value (a one-point metric) is centred in a small range, not drawn at the
      // left edge of uPlot's default 0..100.
      scales: { x: { time: this.opts.x === "wall", range: (u, min, max) => (min !== null && min === max
        ? [min - (this.opts.x === "wall" ? 30 : 1), max + (this.opts.x === "wall" ? 30 : 1)] : [min, max]) },
      // A log axis (exponents) spans whole decades, so its end ticks are powers of ten too;
      // a linear one any magnitude and any span, 5 + 1e-9 and 1e-25 and 1e300 alike.
      y: { range: (u, min, max) => (this.opts.log ? decadeRange(min, max) : linearRange(min, max)) } },
      // Wall-time ticks are spaced for their labels: "04:55:18.65" (a span under a minute
      // may need sub-second digits) and "2026-12-01 04:55" (ticks over days) are wider
      // than uPlot's default spacing allows, and overlapped.
      axes: [this.opts.x === "wall" ? { space: (u, i, min, max) => (max - min < 60 ? 95 : max - min >= 43200 ? 130 : 60),
        values: (u, splits) => {
        const labels = wallTicks(splits, (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0));
        card.xLast = lastLabel(splits, labels);
        card.node.dataset.xticks = JSON.stringify(labels);
        return labels;
      } } : this.opts.x === "rel" ? { values: (u, splits) => {
        // relative seconds as the y axis writes numbers: ticks 0.0003 s apart stay apart
        const labels = tickLabels(splits, Math.abs((u.scales.x.max ?? 0) - (u.scales.x.min ?? 0)));
        card.xLast = lastLabel(splits, labels);
        card.node.dataset.xticks = JSON.stringify(labels);
        return labels;
      } } : { incrs: STEP_INCRS,
        // as far apart as the widest label needs ("1,000,000,000,000" overlapped at 50 px)
        space: (u, i, min, max) => Math.max(50, 16 + 7.5 * Math.max(Math.abs(min), Math.abs(max)).toLocaleString("en-US").length),
        values: (u, splits) => {
        const labels = splits.map((v) => (v === null || v === undefined ? "" : v.toLocaleString("en-US")));
        card.xLast = lastLabel(splits, labels);
        card.node.dataset.xticks = JSON.stringify(labels);
        return labels;
      } }, { size: (u, values) => Math.max(60, 18 + 8 * Math.max(0, ...(values || []).map((v) => String(v).length))), splits: (u, i, min, max, incr) => (this.opts.log ? decadeSplits(min, max) : linearSplits(min, max, incr)), values: (u, splits) => {
        const span = Math.abs((u.scales.y.max ?? 0) - (u.scales.y.min ?? 0));
        const labels = this.opts.log ? splits.map((e) => (e === null || e === undefined ? "" : decadeLabel(e)))
          : scaledTickLabels(splits, span, card.yExp);
        card.node.dataset.yticks = JSON.stringify(labels);
        return labels;
      } }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false, setScale: true }, dataIdx: extentDataIdx },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 4) return;
          const x0 = u.posToVal(u.select.left, "x"), x1 = u.posToVal(u.select.left + u.select.width, "x");
          this.zoom(card, x0, x1);
        }],
        draw: [(u) => {
          card.node.dataset.xrange = JSON.stringify([u.scales.x.min, u.scales.x.max]);
          // how far (CSS px) the last x tick label reaches past the chart's right edge: a
          // test's view of a cut label (0 or less: inside)
          if (card.xLast) {
            const right = u.bbox.left / uPlot.pxRatio + u.valToPos(card.xLast.value, "x") + xLabelWidth(u, card.xLast) / 2;
            card.node.dataset.xlabelPast = String(Math.ceil(right - u.width));
          }
          // the breaks uPlot drew in the lines (a test's view of the gaps)
          card.node.dataset.gaps = String(u.series.reduce((n, sr) => n + (sr._paths?.gaps?.length || 0), 0));
          card.node.dataset.drawn = String((Number(card.node.dataset.drawn) || 0) + 1);
        }],
      },
    };
    if (card.plot) card.plot.destroy();
    clear(card.body);
    card.plot = new uPlot(opts, data, card.body);
    const legendRows = card.plot.root.querySelectorAll(".u-legend .u-series");
    series.forEach((sr, i) => { if (sr.bandEdge && legendRows[i]) legendRows[i].style.display = "none"; });
    // a legend taller than its box scrolls: say so, with how many entries it holds (once
    // laid out: the card may not have its width yet)
    const plot = card.plot, entries = series.filter((sr, i) => i > 0 && !sr.bandEdge).length;
    requestAnimationFrame(() => {
      const legend = plot.root.querySelector(".u-legend");
      if (card.plot !== plot || !legend || legend.scrollHeight <= legend.clientHeight + 1) return;
      card.body.append(el("p", { class: "muted legend-more", testid: "legend-more",
        text: `${entries.toLocaleString("en-US")} legend entries: scroll the legend to see them all` }));
    });
    card.node.dataset.lastStep = String(Math.max(-1, ...[...card.series.values()].map((s) => s.steps.length ? s.steps[s.steps.length - 1] : -1)));
    card.node.dataset.series = String(lines.length);
    let ymax = -Infinity;
    for (const l of lines) for (const v of l.y) if (Number.isFinite(v) && v > ymax) ymax = v;
    card.node.dataset.ymax = String(ymax);
  }

  // Map an x range back to steps and re-query it at full resolution: for each run whose
  // points reach into or across [x0, x1], the steps of its points inside it and of its
  // nearest point on either side (a range between two drawn points — on a time axis,
  // between two flushes' timestamps — still asks for the steps between them).
  zoom(card, x0, x1) {
    let s0 = Infinity, s1 = -Infinity;
    for (const [id, s] of card.series) {
      const xs = this.xOf(this.byId.get(id), s);
      let inside = false, below = -1, above = -1, lo = Infinity, hi = -Infinity;
      for (let i = 0; i < xs.length; i++) {
        const x = xs[i];
        if (x >= x0 && x <= x1) {
          inside = true;
          lo = Math.min(lo, s.steps[i]); hi = Math.max(hi, s.steps[i]);
        } else if (x < x0 && (below < 0 || x > xs[below])) below = i;
        else if (x > x1 && (above < 0 || x < xs[above])) above = i;
      }
      if (!inside && (below < 0 || above < 0)) continue;  // the range is beside this run
      for (const i of [below, above]) {
        if (i >= 0) { lo = Math.min(lo, s.steps[i]); hi = Math.max(hi, s.steps[i]); }
      }
      s0 = Math.min(s0, lo); s1 = Math.max(s1, hi);
    }
    // Always re-queried, reduced or not, so that the points badge counts what the zoomed
    // card shows (and the range's points come at full resolution).
    if (Number.isFinite(s0)) this.load(card, [Math.floor(s0), Math.ceil(s1)]);
    else {  // between runs (on a time axis): nothing to ask for, and the badge says so
      card.badge.textContent = "no point in this range";
      card.badge.dataset.returned = "0";
    }
  }

  // The chart as a PNG: title, plot, the x axis' title centred under it ("step",
  // "time (UTC)", "seconds"), and a legend (each series' colour and name) below, wrapped
  // into rows as wide as the plot.
  png(card) {
    if (!card.plot) return;
    const src = card.plot.ctx.canvas;
    const dpr = devicePixelRatio || 1;
    const font = `${12 * dpr}px sans-serif`, row = 18 * dpr, pad = 8 * dpr, swatch = 14 * dpr;
    const measure = document.createElement("canvas").getContext("2d");
    measure.font = font;
    const entries = card.plot.series.slice(1).filter((s) => s.show !== false && !s.bandEdge).map((s) => ({
      label: String(s.label), stroke: typeof s.stroke === "function" ? s.stroke(card.plot, 1) : s.stroke,
    }));
    const placed = [];
    let x = pad, y = 0;
    for (const e of entries) {
      const w = swatch + 4 * dpr + measure.measureText(e.label).width + 12 * dpr;
      if (x + w > src.width && x > pad) { x = pad; y += row; }
      placed.push({ ...e, x, y });
      x += w;
    }
    const legendHeight = entries.length ? y + row + pad : 0;
    const top = 30 * dpr;
    const xTitle = String(card.plot.series[0].label ?? "");
    const xTitleHeight = xTitle ? row + pad / 2 : 0;
    const out = document.createElement("canvas");
    out.width = src.width; out.height = top + src.height + xTitleHeight + legendHeight;
    const ctx = out.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, out.width, out.height);
    ctx.fillStyle = "#111"; ctx.font = `${14 * dpr}px sans-serif`;
    ctx.fillText(card.key, 8 * dpr, 20 * dpr);
    ctx.drawImage(src, 0, top);
    ctx.font = font; ctx.textBaseline = "middle";
    if (xTitle) {
      // centred under the plotting area (uPlot's bbox: canvas pixels, after the y axis)
      const box = card.plot.bbox;
      ctx.fillStyle = "#111"; ctx.textAlign = "center";
      ctx.fillText(xTitle, box.left + box.width / 2, top + src.height + xTitleHeight / 2);
      ctx.textAlign = "start";
    }
    const y0 = top + src.height + xTitleHeight + pad / 2;
    for (const e of placed) {
      ctx.fillStyle = e.stroke || "#111";
      ctx.fillRect(e.x, y0 + e.y + (row - swatch / 3) / 2, swatch, swatch / 3);
      ctx.fillStyle = "#111";
      ctx.fillText(e.label, e.x + swatch + 4 * dpr, y0 + e.y + row / 2);
    }
    card.node.dataset.pngLegend = JSON.stringify(placed.map((e) => e.label));
    card.node.dataset.pngHeight = String(out.height);
    card.node.dataset.pngXTitle = xTitle;
    out.toBlob((blob) => download(card.key.replace(/[^\w.-]+/g, "_") + ".png", blob), "image/png");
  }

  startLive() {
    // "crashed" is a running run whose heartbeat is stale: it may still be writing.
    const running = this.runs.filter((r) => r.status === "running" || r.status === "crashed").map((r) => r.id);
    if (!running.length) return;
    const cursor = {};
    for (const id of running) {
      cursor[id] = {};
      for (const k of this.keys) cursor[id][k] = this.summaries[id]?.[k]?.last_step ?? -1;
    }
    this.source = liveSource(`/api/live?runs=${running.join(",")}&cursor=${encodeURIComponent(JSON.stringify(cursor))}`);
    this.source.addEventListener("points", (ev) => {
      const p = JSON.parse(ev.data);
      if (!this.cards.has(p.key) && !this.closed) {
        // a key the run started logging after the page opened: a card of its own, which
        // loads its series from the server when it comes into view
        this.keys.push(p.key);
        const card = this.makeCard(p.key);
        this.grid.append(card.node);
        this.observer.observe(card.node);
        return;
      }
      const card = this.cards.get(p.key);
      if (!card || !card.mounted || card.range) return;
      this.append(card, p.run, p.steps, p.values, p.times);
      if (!card.pending) {
        card.pending = true;
        requestAnimationFrame(() => { card.pending = false; this.draw(card); });
      }
    });
    this.source.addEventListener("status", (ev) => {
      const changed = JSON.parse(ev.data);
      for (const [id, status] of Object.entries(changed)) {
        const run = this.byId.get(Number(id));
        if (run) run.status = status;
        const badge = document.querySelector(`[data-testid="run-status-${Number(id)}"]`);
        if (badge) { badge.textContent = status; badge.className = `status s-${status}`; }
        if (this.onStatus) this.onStatus(Number(id), status);
      }
    });
  }

  destroy() {
    this.closed = true;
    this.prefetched = null;
    for (const c of this.cards.values()) clearTimeout(c.reloadTimer);
    this.observer.disconnect();
    if (this.source) this.source.close();
    for (const c of this.cards.values()) if (c.plot) c.plot.destroy();
  }
}

// The URL parameters of the chart options, taken by every view with charts.
// How many runs the charts page lists before folding the others.
const SHOWN_RUNS = 20;

export const CHART_PARAMS = ["x", "log", "smooth", "group", "legend", "traces"];

// The chart options of a view's URL (x, log, smooth, group, legend, traces), each checked
// by `up` (a UrlParams: a bad value is named in the view's warning box, the default used).
export function chartOptions(up, varying) {
  const groups = ["hash", "noseed", ...varying.map((k) => "c:" + k)];
  return {
    x: up.choice("x", ["step", "wall", "rel"], "step"),
    log: up.flag("log"),
    smooth: up.number("smooth", 0, 0.99, 0),
    group: up.choice("group", groups, "", `hash, noseed, or c:<config key> for a key that varies here (${
      varying.length ? varying.map((k) => "c:" + k).join(", ") : "none varies"})`),
    legend: up.subset("legend", varying, "config keys that vary here") || [],
    traces: up.flag("traces"),
  };
}

export function chartControls(params, varying, onChange, up = new UrlParams(params)) {
  const opts = chartOptions(up, varying);
  const update = (patch, urlPatch) => { Object.assign(opts, patch); setParams(urlPatch); onChange(opts); };
  const smoothOut = el("output", { text: opts.smooth.toFixed(2) });
  const bar = el("div", { class: "toolbar chart-controls", testid: "chart-controls" },
    el("label", {}, "x ", el("select", { testid: "x-axis", onchange: (e) => update({ x: e.target.value }, { x: e.target.value === "step" ? "" : e.target.value }) },
      [["step", "step"], ["wall", "wall time"], ["rel", "relative time"]].map(([v, t]) => el("option", { value: v, text: t, selected: opts.x === v })))),
    el("label", {}, el("input", { type: "checkbox", testid: "log-scale", checked: opts.log, onchange: (e) => update({ log: e.target.checked }, { log: e.target.checked ? "1" : "" }) }), " log y"),
    el("label", {}, "smoothing ", el("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: opts.smooth, testid: "smoothing",
      oninput: (e) => { smoothOut.textContent = Number(e.target.value).toFixed(2); },
      onchange: (e) => update({ smooth: Number(e.target.value) }, { smooth: e.target.value === "0" ? "" : e.target.value }) }), smoothOut),
    el("label", {}, "group ", el("select", { testid: "group-by", onchange: (e) => update({ group: e.target.value }, { group: e.target.value }) },
      el("option", { value: "", text: "none" }), el("option", { value: "hash", text: "structural hash", selected: opts.group === "hash" }),
      el("option", { value: "noseed", text: "config minus seed", selected: opts.group === "noseed" }),
      varying.map((k) => el("option", { value: "c:" + k, text: k, selected: opts.group === "c:" + k })))),
    el("label", {}, el("input", { type: "checkbox", testid: "show-traces", checked: opts.traces, onchange: (e) => update({ traces: e.target.checked }, { traces: e.target.checked ? "1" : "" }) }), " individual traces"),
    el("details", { class: "picker", testid: "legend-keys" }, el("summary", { text: "legend keys" }),
      varying.map((k) => el("label", {}, el("input", { type: "checkbox", checked: opts.legend.includes(k), onchange: (e) => {
        const legend = e.target.checked ? [...opts.legend, k] : opts.legend.filter((x) => x !== k);
        update({ legend }, { legend: legend.join(",") });
      } }), k))));
  return { bar, opts };
}

// The last x tick (the rightmost split with a label) as { value, label }, or null.
function lastLabel(splits, labels) {
  for (let i = splits.length - 1; i >= 0; i--) {
    if (labels[i] && splits[i] !== null && splits[i] !== undefined) return { value: splits[i], label: String(labels[i]) };
  }
  return null;
}

// The width (CSS px) of an x tick label in the axis' font; 0 for none.
let measureCtx = null;
function xLabelWidth(u, last) {
  if (!last) return 0;
  measureCtx ??= document.createElement("canvas").getContext("2d");
  const font = u.axes?.[0]?.font;
  measureCtx.font = Array.isArray(font) ? font[0] : font || `${12 * uPlot.pxRatio}px sans-serif`;
  return measureCtx.measureText(last.label).width / uPlot.pxRatio;
}

// The most runs one Charts page (one /api/series request per card) takes.
export const MAX_CHART_RUNS = 1000;

export async function renderCharts(view, params) {
  const up = new UrlParams(params).takes("runs", CHART_PARAMS);
  const ids = up.ids("runs");
  if (!ids.length) {
    view.append(el("p", { class: "muted", testid: "charts-empty" }, "Select runs in the table first: ",
      el("a", { href: "#/runs", testid: "back-link", text: "← runs" })));
    up.show(view);
    return null;
  }
  if (ids.length > MAX_CHART_RUNS) {
    notFound(view, `Charts take at most ${MAX_CHART_RUNS.toLocaleString("en-US")} runs, got ${ids.length.toLocaleString("en-US")}.`, "#/runs",
             `runs (select at most ${MAX_CHART_RUNS.toLocaleString("en-US")})`);
    up.show(view);
    return null;
  }
  const data = await api("runs", { ids: ids.join(",") });
  // Every id asked for that is not a run is named; the page shows the ones that are.
  const found = new Set(data.runs.map((r) => r.id));
  const missing = ids.filter((id) => !found.has(id));
  const message = missing.length === 1 ? `no run with id ${missing[0]}` : `no runs with ids ${missing.join(", ")}`;
  if (!data.runs.length) {
    notFound(view, message, "#/runs", "runs");
    up.show(view);
    return null;
  }
  const shownIds = ids.filter((id) => found.has(id));
  const { varying } = varyingKeys(data.runs);
  view.append(el("h2", { text: `Charts of ${plural(data.runs.length, "run")}` }));
  if (missing.length) {
    view.append(el("div", { class: "notfound", testid: "charts-missing" },
      el("p", { class: "error", testid: "error", text: message }),
      el("p", {}, el("a", { href: `#/charts?runs=${shownIds.join(",")}`, testid: "charts-found",
        text: `the charts of the ${plural(shownIds.length, "run")} that exist alone` }), " · ",
        el("a", { href: "#/runs", testid: "back-link", text: "← runs" }))));
  }
  // each run linked with its status; past the first SHOWN_RUNS the rest fold under a
  // counted summary (1,000 runs filled two screens before the first chart), still in the
  // page, where the live stream updates their statuses
  const chip = (r) => [el("a", { href: `#/run/${r.id}`, text: "#" + r.id }), " ",
    el("span", { class: `status s-${r.status}`, text: r.status, testid: `run-status-${r.id}` }), "  "];
  const rest = data.runs.slice(SHOWN_RUNS);
  view.append(
    el("p", { class: "muted" }, "runs: ", data.runs.slice(0, SHOWN_RUNS).map(chip),
      rest.length ? el("details", { class: "more-runs", testid: "more-runs" },
        el("summary", { text: `and ${plural(rest.length, "more run")}` }), rest.map(chip)) : null,
      el("button", { class: "small", text: "compare", disabled: data.runs.length < 2 || data.runs.length > 10,
        onclick: () => go("/compare", { runs: shownIds.join(",") }) })));
  let board = null;
  const holder = el("div");
  const { bar, opts } = chartControls(params, varying, () => {
    for (const card of board.cards.values()) if (card.mounted) board.draw(card);
  }, up);
  view.append(bar, holder);
  up.show(view);
  board = new ChartBoard(holder, data.runs, data.metric_keys, opts, data.summaries);
  return () => board.destroy();
}
