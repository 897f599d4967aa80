// Parallel coordinates with brushing, and a scatter plot; both on <canvas> (text drawn
// with fillText, never as HTML).
import { decadeLabel, decadeSplits } from "./charts.js";
import { el, exact, fmt, num } from "./util.js";

// The decimal exponent of x > 0, exactly (Math.log10 can land a hair below a power of ten).
function exponent(x) {
  return Number(x.toExponential().split("e")[1]);
}

// A tick value rounded to a multiple of 10^e (its quantum), written as util.js's tickLabel
// writes numbers (1e-4, -2.5e-31, 0.25, 1000.00125; "0" only for a tick that rounds to 0),
// but with every digit down to the quantum's however many that takes: tickLabel stops at
// 12 significant digits, and toFixed at 20 decimals (it wrote -1e-30 as "0").
export function quantumLabel(v, e) {
  if (!Number.isFinite(v)) return "";
  let n;
  const d = v === 0 ? 0 : exponent(Math.abs(v)) - e + 1;  // significant digits down to 10^e
  if (d >= 1) n = Number(v.toPrecision(Math.min(d, 100)));
  else {
    // |v| < 10^e: it rounds to 0 or to ±10^e (a 10^e that underflows is 0: no double but
    // 0 lies below it)
    const q = Number(`1e${e}`);
    n = q > 0 && Math.abs(v) >= q / 2 ? Math.sign(v) * q : 0;
  }
  if (n === 0) return "0";
  const a = Math.abs(n);
  return a < 1e-3 || a >= 1e6 ? n.toExponential().replace("e+", "e") : String(n);
}

// Labels for ticks at lo + p * (hi - lo), each with the digits that set it apart from its
// neighbours and no more (1000.0012 … 1000.0020, never five "1000"s; 0.25 … 1, never
// 0.2500000001): each tick is rounded to a multiple of a tenth of the power of ten below
// the ticks' spacing, whatever the range (-1e-30 .. 0, denormals, ±1.7e308).
export function linearTicks(lo, hi, ps) {
  // lo * (1 - p) + hi * p: lo + p * (hi - lo) overflows for -1.7e308 .. 1.7e308
  const values = ps.map((p) => (p === 1 ? hi : lo * (1 - p) + hi * p));
  const gaps = values.slice(1).map((v, i) => v - values[i]).filter((g) => g > 0);
  let step = gaps.length ? Math.min(...gaps) : 0;
  if (step === Infinity) step = Math.max(Math.abs(lo), Math.abs(hi));
  if (!(step > 0)) return ps.map((p, i) => [p, fmt(values[i])]);
  const e = exponent(step) - 1;
  // A tick between the ends within a quantum of 0 is 0 (-0.3 * 0.25 + 0.1 * 0.75 is
  // 2.8e-17); an end is a value of the data, and reads "0" only if it is 0: else it is
  // written to 6 significant digits (4.8e-5 on an axis to 1; 1e-322 on one to 1e-313),
  // below a quantum while its neighbour is ten quanta or more away.
  return ps.map((p, i) => {
    const v = values[i], label = quantumLabel(v, e);
    return [p, label === "0" && v !== 0 && (p === 0 || p === 1) ? quantumLabel(v, exponent(Math.abs(v)) - 5) : label];
  });
}

// An axis' extent in full, for a tooltip: its ticks are rounded (0.9833 for 0.98333333).
function axisRange(dim, axis) {
  if (axis.kind === "num") return `${dim.label}: ${exact(axis.min) ?? fmt(axis.min)} to ${exact(axis.max) ?? fmt(axis.max)}`;
  // a category axis names its values in full (their ticks may be cut), the first 20
  const names = axis.ticks.slice(0, 20).map(([, t]) => (t.length > 300 ? t.slice(0, 300) + "…" : t));
  return `${dim.label}: ${axis.ticks.length} ${axis.ticks.length === 1 ? "value" : "values"}\n` +
    names.join("\n") + (axis.ticks.length > 20 ? "\n…" : "");
}

const finite = (v) => typeof v === "number" && Number.isFinite(v);

// How far up a linear axis lo..hi the median may lie, at most, for the values to go on a
// log axis instead (see axisOf).
export const LOG_MEDIAN_BELOW = 0.2;

// An axis for dim's values over runs: {kind: "num"|"cat", pos(v) → 0..1 (null: not drawn),
// ticks [[p, label]], and for numbers lo, hi, min, max, log}.
export function axisOf(runs, dim) {
  const values = runs.map((r) => num(dim.get(r)));
  const numeric = values.filter(finite);
  if (numeric.length && numeric.length === values.filter((v) => v !== null && v !== undefined).length) {
    const sorted = numeric.sort((a, b) => a - b);
    const lo = sorted[0], hi = sorted[sorted.length - 1], min = lo, max = hi;
    // one value: a single tick mid-axis (lo ± 0.5 is lo itself for 1e300)
    if (lo === hi) return { kind: "num", lo, hi, min, max, pos: (v) => (finite(v) ? 0.5 : null), ticks: [[0.5, fmt(lo)]] };
    // the median of the distinct values: a grid searched by Hyperband (lr 0.01, 0.0316,
    // 0.1, 0.316, 1) keeps its spacing however many trials the winners got
    const distinct = sorted.filter((v, i) => i === 0 || v !== sorted[i - 1]);
    const m = distinct.length;
    const median = distinct[(m - 1) >> 1] / 2 + distinct[m >> 1] / 2;
    // A log axis only where it spreads the values out: all positive, spanning two decades
    // or more, AND the median of the distinct values in the lowest fifth of a linear axis
    // (half of them squeezed into its bottom fifth), as for a learning rate sampled
    // log-uniformly from 1e-4 to 1 (median 1e-2) or a grid of powers of ten. A metric uniform on [0, 1] whose smallest value is 4.8e-5 spans four
    // decades but has its median mid-axis: a log axis would squash 0.1 .. 1, most of the
    // runs, into its top quarter, so it stays linear. A log axis is ticked at each power of
    // ten; a linear one at its ends and three points between, each with the digits that
    // tell it from its neighbours.
    if (lo > 0 && hi / lo >= 100 && (median - lo) / (hi - lo) < LOG_MEDIAN_BELOW) {
      const l0 = Math.log10(lo), l1 = Math.log10(hi);
      const pos = (v) => (finite(v) && v > 0 ? (Math.log10(v) - l0) / (l1 - l0) : null);
      const ticks = [[0, fmt(lo)], [1, fmt(hi)]];
      // the decades between, every k-th when they are many (300 decades stacked 23 labels)
      for (const e of decadeSplits(l0, l1)) {
        const p = (e - l0) / (l1 - l0);
        if (p > 0.04 && p < 0.96) ticks.push([p, decadeLabel(e)]);
      }
      return { kind: "num", log: true, lo, hi, min, max, pos, ticks };
    }
    // halves: hi - lo overflows for -1.7e308 .. 1.7e308 (and halving is exact elsewhere)
    const half = hi / 2 - lo / 2;
    return { kind: "num", lo, hi, min, max, pos: (v) => (finite(v) ? (v / 2 - lo / 2) / half : null),
             ticks: linearTicks(lo, hi, [0, 0.25, 0.5, 0.75, 1]) };
  }
  // a category per distinct value; JSON names each but a non-finite number, which JSON
  // writes null (an inf config value was labelled "–", one category with NaN and null)
  const key = (v) => (typeof v === "number" && !Number.isFinite(v) ? `#${fmt(v)}` : JSON.stringify(v));
  const shown = new Map(values.filter((v) => v !== null && v !== undefined).map((v) => [key(v), v]));
  const cats = [...shown.keys()].sort();
  const n = Math.max(cats.length - 1, 1);
  return { kind: "cat", pos: (v) => (v === null || v === undefined ? null : cats.length === 1 ? 0.5 : cats.indexOf(key(v)) / n),
           ticks: cats.map((c, i) => [cats.length === 1 ? 0.5 : i / n, fmt(shown.get(c))]) };
}

function setupCanvas(container, height) {
  const width = Math.max(container.clientWidth || 600, 300);
  const canvas = el("canvas", { width: width * devicePixelRatio, height: height * devicePixelRatio,
                                style: { width: width + "px", height: height + "px" } });
  container.append(canvas);
  const ctx = canvas.getContext("2d");
  ctx.scale(devicePixelRatio, devicePixelRatio);
  return { canvas, ctx, width, height };
}

// The text of one drawing of a canvas, laid out so that no two labels overlap: put() draws a
// label where it overlaps none drawn before (else skips it and returns null), or, with
// `must`, wherever it is asked to (the caller keeps those apart: axis ends, headers);
// `maxWidth` squeezes a label to that width rather than cut it (a cut label can read as its
// neighbour). The boxes [x0, y0, x1, y1, text] end up in canvas.dataset.labels, which the
// tests read.
function labeller(ctx) {
  const boxes = [];
  const hits = (b) => boxes.some((o) => b[0] < o[2] + 2 && o[0] < b[2] + 2 && b[1] < o[3] + 1 && o[1] < b[3] + 1);
  function put(text, x, y, { align = "center", size = 10, maxWidth = Infinity, must = false, clip = false } = {}) {
    text = String(text);
    ctx.font = `${size}px sans-serif`;
    // a category (a string) is cut with "…" to fit, never squeezed: a squeezed 3,000-
    // character value was a grey bar (its whole is in the axis' tooltip)
    if (clip && Number.isFinite(maxWidth)) text = clipEnd(ctx, text, Math.max(maxWidth, 1));
    const m = ctx.measureText(text);
    const w = Math.min(m.width, Math.max(maxWidth, 1));
    const x0 = align === "left" ? x : align === "right" ? x - w : x - w / 2;
    const box = [x0, y - Math.max(m.actualBoundingBoxAscent, size * 0.7), x0 + w,
                 y + Math.max(m.actualBoundingBoxDescent, 0), text];
    if (!must && hits(box)) return null;
    ctx.textAlign = align;
    if (Number.isFinite(maxWidth)) ctx.fillText(text, x, y, Math.max(maxWidth, 1));
    else ctx.fillText(text, x, y);
    boxes.push(box);
    return box;
  }
  const reserve = (box) => boxes.push(box);
  const json = () => JSON.stringify(boxes.map(([a, b, c, d, t]) => [+a.toFixed(1), +b.toFixed(1), +c.toFixed(1), +d.toFixed(1), t]));
  return { put, reserve, json };
}

// `text` cut to fit `width` px at the current font: as much of its start as fits, and "…".
function clipEnd(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  const chars = Array.from(text.length > 400 ? text.slice(0, 400) : text);
  let lo = 0, hi = chars.length;  // lo chars of the start fit, hi do not
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (ctx.measureText(chars.slice(0, mid).join("") + "…").width <= width) lo = mid; else hi = mid;
  }
  return chars.slice(0, lo).join("") + "…";
}

// `label` shortened to fit `width` px at the current font: "…" and as much of its end as
// fits (model.backbone.depth → …backbone.depth: a nested key's last parts tell it apart).
function shorten(ctx, label, width) {
  if (ctx.measureText(label).width <= width) return label;
  const chars = Array.from(label);
  let lo = 0, hi = chars.length;  // lo chars of the end fit, hi do not
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (ctx.measureText("…" + chars.slice(-mid).join("")).width <= width) lo = mid; else hi = mid;
  }
  return "…" + (lo ? chars.slice(-lo).join("") : "");
}

// The axes drawn side by side at most: one per MIN_SPACING px of the plot's width (a tick
// label and a header fit between two), and never more than MAX_AXES.
export const MIN_SPACING = 60, MAX_AXES = 24;

// The dims drawn when they are more than `limit`: the metric's and each brushed one
// (`brushed`: keys), then the keys whose values differ across the most runs (the fewest runs
// at their commonest value), ties in their given order; drawn in their given order.
function pickDims(runs, dims, limit, brushed) {
  if (dims.length <= limit) return { shown: dims, left: [] };
  const spread = (d) => {
    const counts = new Map();
    for (const r of runs) {
      const k = JSON.stringify(d.get(r) ?? null);
      counts.set(k, (counts.get(k) || 0) + 1);
    }
    return runs.length - Math.max(0, ...counts.values());
  };
  const ranked = dims.map((d, i) => ({ i, must: d.metric || brushed.has(d.key) ? 1 : 0, s: spread(d) }))
    .sort((a, b) => (b.must - a.must) || (b.s - a.s) || (a.i - b.i));
  const keep = new Set(ranked.slice(0, Math.max(limit, ranked.filter((r) => r.must).length)).map((r) => r.i));
  return { shown: dims.filter((_, i) => keep.has(i)), left: dims.filter((_, i) => !keep.has(i)) };
}

// The window-level drag listeners of the chart drawn last (removed when it is redrawn).
let listeners = null;

// onBrush(kept, ranges): kept is the Set of run ids inside every brush (null: no brush),
// ranges {dim key: [p0, p1]} the brushes as fractions of their axis (0 bottom, 1 top);
// `initial` (same shape) restores brushes, e.g. from a shared link.
// More dims than fit the width (MIN_SPACING, MAX_AXES) are not all drawn: see pickDims; a
// note under the plot says how many were left out and names them.
export function drawParcoords(container, runs, allDims, onBrush, initial = null) {
  if (listeners) listeners.abort();
  listeners = new AbortController();
  const { signal } = listeners;
  if (!allDims.length) { container.append(el("p", { class: "muted", text: "No varying config keys." })); return; }
  const { canvas, ctx, width, height } = setupCanvas(container, 280);
  const left = 50, right = width - 50, bottom = height - 24;
  const limit = Math.max(2, Math.min(MAX_AXES, Math.floor((right - left) / MIN_SPACING) + 1));
  const { shown: dims, left: leftOut } = pickDims(runs, allDims, limit, new Set(Object.keys(initial || {})));
  const axes = dims.map((d) => axisOf(runs, d));
  container.dataset.logAxes = JSON.stringify(dims.filter((d, i) => axes[i].log).map((d) => d.key));
  const x = (i) => (dims.length === 1 ? (left + right) / 2 : left + (i * (right - left)) / (dims.length - 1));
  const spacing = dims.length === 1 ? right - left : (right - left) / (dims.length - 1);
  // The headers: in one row when each fits between its neighbours, else in two alternating
  // rows (twice the room each); a header still too wide keeps the end of its label ("…" and
  // the rest in the tooltip). Each also stays inside the canvas.
  ctx.font = "12px sans-serif";
  const room = (i, rows) => Math.min(rows * spacing - 10, 2 * Math.min(x(i), width - x(i)) - 4);
  const rows = dims.every((d, i) => ctx.measureText(d.label).width <= room(i, 1)) ? 1 : 2;
  const headers = dims.map((d, i) => shorten(ctx, d.label, room(i, rows)));
  const top = rows === 1 ? 34 : 46;
  const headerY = (i) => (rows === 1 ? top - 18 : i % 2 ? 28 : 14);
  const y = (p) => bottom - p * (bottom - top);
  const brushes = new Map();  // axis index → [p0, p1] in 0..1
  const metricAxis = dims.findIndex((d) => d.metric);
  for (const [key, range] of Object.entries(initial || {})) {
    const i = dims.findIndex((d) => d.key === key);
    const [a, b] = (Array.isArray(range) ? range : []).map(Number);
    if (i >= 0 && Number.isFinite(a) && Number.isFinite(b) && a >= 0 && b <= 1 && a <= b) brushes.set(i, [a, b]);
  }
  const report = () => onBrush(brushes.size ? new Set(runs.filter(kept).map((r) => r.id)) : null,
    Object.fromEntries([...brushes].map(([i, [a, b]]) => [dims[i].key, [+a.toFixed(4), +b.toFixed(4)]])));

  function kept(r) {
    for (const [i, [a, b]] of brushes) {
      const p = axes[i].pos(num(dims[i].get(r)));
      if (p === null || p < a || p > b) return false;
    }
    return true;
  }
  function draw() {
    ctx.clearRect(0, 0, width, height);
    const lines = runs.map((r) => ({ r, k: kept(r) }));
    for (const pass of [false, true]) {
      for (const { r, k } of lines) {
        if (k !== pass) continue;
        ctx.beginPath();
        let started = false;
        dims.forEach((d, i) => {
          const p = axes[i].pos(num(d.get(r)));
          if (p === null) { started = false; return; }
          started ? ctx.lineTo(x(i), y(p)) : ctx.moveTo(x(i), y(p));
          started = true;
        });
        if (!k) ctx.strokeStyle = "rgba(160,160,160,0.25)";
        else if (metricAxis >= 0) {
          const p = axes[metricAxis].pos(num(dims[metricAxis].get(r)));
          ctx.strokeStyle = p === null ? "rgba(120,120,120,0.6)" : `hsla(${240 - 200 * p},70%,45%,0.7)`;
        } else ctx.strokeStyle = "rgba(31,119,180,0.6)";
        ctx.lineWidth = 1.2;
        ctx.stroke();
      }
    }
    ctx.fillStyle = "#222";
    ctx.strokeStyle = "#444";
    const text = labeller(ctx);
    dims.forEach((d, i) => {
      ctx.beginPath(); ctx.moveTo(x(i), top); ctx.lineTo(x(i), bottom); ctx.lineWidth = 1; ctx.stroke();
      text.put(headers[i], x(i), headerY(i), { size: 12, must: true });
    });
    dims.forEach((d, i) => {
      // the ends above and below the axis (each within its share of the width); the ticks
      // between beside it, off the line, where they overlap no other label
      const endRoom = Math.min(spacing - 8, 2 * Math.min(x(i), width - x(i)) - 4);
      const ticks = axes[i].ticks;
      for (const [p, t] of ticks.filter(([p]) => p === 0 || p === 1)) {
        text.put(t, x(i), y(p) + (p === 0 ? 14 : -4), { maxWidth: endRoom, must: true, clip: axes[i].kind === "cat" });
      }
      for (const [p, t] of ticks.filter(([p]) => p !== 0 && p !== 1)) {
        if (text.put(t, x(i) - 5, y(p) + 3, { align: "right", maxWidth: Math.min(spacing - 14, x(i) - 7), clip: axes[i].kind === "cat" })) {
          ctx.beginPath(); ctx.moveTo(x(i) - 3, y(p)); ctx.lineTo(x(i), y(p)); ctx.stroke();
        }
      }
      const b = brushes.get(i);
      if (b) { ctx.fillStyle = "rgba(255,165,0,0.35)"; ctx.fillRect(x(i) - 7, y(b[1]), 14, y(b[0]) - y(b[1])); ctx.fillStyle = "#222"; }
    });
    canvas.dataset.labels = text.json();
  }
  // The axis under the mouse: within 14 px of its line, or, over the headers, the axis
  // whose header it is.
  const axisAt = (mx, my) => {
    const reach = my < top - 4 ? Math.max(14, (rows * spacing) / 2) : 14;
    let best = -1;
    dims.forEach((_, j) => {
      if (Math.abs(x(j) - mx) < reach && (best < 0 || Math.abs(x(j) - mx) < Math.abs(x(best) - mx))) best = j;
    });
    return best;
  };
  let drag = null;
  const pos = (ev) => { const r = canvas.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
  canvas.addEventListener("mousedown", (ev) => {
    const [mx, my] = pos(ev);
    const i = dims.findIndex((_, j) => Math.abs(x(j) - mx) < 14);
    if (i < 0) return;
    const p = Math.min(1, Math.max(0, (bottom - my) / (bottom - top)));
    drag = { i, p0: p, moved: false };
    ev.preventDefault();
  });
  // Hovering an axis (or its header) names it in full with its full extent (the tooltip):
  // the ticks are rounded, and a header may be shortened.
  canvas.addEventListener("mousemove", (ev) => {
    if (drag) return;
    const i = axisAt(...pos(ev));
    canvas.title = i < 0 ? "drag along an axis to brush a range" : axisRange(dims[i], axes[i]);
  }, { signal });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    const [, my] = pos(ev);
    const p = Math.min(1, Math.max(0, (bottom - my) / (bottom - top)));
    if (Math.abs(p - drag.p0) > 0.01) drag.moved = true;
    if (drag.moved) brushes.set(drag.i, [Math.min(p, drag.p0), Math.max(p, drag.p0)]);
    draw();
  }, { signal });
  window.addEventListener("mouseup", () => {
    if (!drag) return;
    if (!drag.moved) brushes.delete(drag.i);
    drag = null;
    draw();
    report();
  }, { signal });
  canvas.dataset.axes = String(dims.length);
  canvas.dataset.maxAxes = String(limit);
  canvas.dataset.leftOut = String(leftOut.length);
  if (leftOut.length) {
    const names = leftOut.map((d) => d.label);
    container.append(el("p", { class: "muted", testid: "pc-left-out", title: names.join("\n"),
      text: `${leftOut.length} of ${allDims.length} axes not drawn (${dims.length} fit this width: the metric, ` +
            `any brushed key, then the keys that differ across the most runs): ${names.slice(0, 5).join(", ")}` +
            `${names.length > 5 ? ", … (hover for all)" : ""}` }));
  }
  draw();
  if (brushes.size) report();
  container.dataset.ready = "1";
}

// kept: the Set of run ids inside the brushes (the others are drawn dimmed), or null.
// No two labels overlap: the y axis's lowest label sits above the x axis's line and the x
// axis's first label starts right of the y axis's line (they met at the origin corner); the
// ends of each axis are always labelled, the ticks between where they fit.
export function drawScatter(container, runs, xDim, yDim, onClick, kept = null) {
  container.replaceChildren();
  const { canvas, ctx, width, height } = setupCanvas(container, 280);
  const ax = axisOf(runs, xDim), ay = axisOf(runs, yDim);
  // the y labels' column as wide as its widest label (up to a third of the width), right of
  // the y axis's title
  ctx.font = "11px sans-serif";
  const widest = Math.max(0, ...ay.ticks.map(([, t]) => ctx.measureText(String(t)).width));
  const left = Math.round(Math.min(Math.max(60, widest + 26), width / 3));
  const right = width - 16, top = 16, bottom = height - 40;
  const pts = [];
  for (const r of runs) {
    const px = ax.pos(num(xDim.get(r))), py = ay.pos(num(yDim.get(r)));
    if (px === null || py === null) continue;
    pts.push([left + px * (right - left), bottom - py * (bottom - top), r.id]);
  }
  ctx.strokeStyle = "#444"; ctx.fillStyle = "#222";
  ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, bottom); ctx.lineTo(right, bottom); ctx.stroke();
  const text = labeller(ctx);
  text.put(xDim.label, (left + right) / 2, height - 6, { size: 11, maxWidth: width - 8, must: true });
  // x: the first label starts at the axis's start, the last ends at its end
  const xAt = (p) => left + p * (right - left);
  const half = (right - left) / 2 - 4;
  for (const [p, t] of ax.ticks.filter(([p]) => p === 0 || p === 1)) {
    text.put(t, xAt(p), bottom + 14, { size: 11, align: p === 0 ? "left" : "right", maxWidth: half, must: true, clip: ax.kind === "cat" });
  }
  const between = (right - left) / Math.max(ax.ticks.length - 1, 1) - 4;
  for (const [p, t] of ax.ticks.filter(([p]) => p !== 0 && p !== 1)) {
    text.put(t, xAt(p), bottom + 14, { size: 11, ...(ax.kind === "cat" ? { maxWidth: between, clip: true } : {}) });
  }
  // y: the lowest label above the x axis's line, the highest below the top
  const yAt = (p) => bottom - p * (bottom - top);
  const yOpts = { size: 11, align: "right", maxWidth: left - 26, clip: ay.kind === "cat" };
  for (const [p, t] of ay.ticks.filter(([p]) => p === 0 || p === 1)) {
    text.put(t, left - 4, p === 0 ? bottom - 3 : yAt(p) + 4, { ...yOpts, must: true });
  }
  for (const [p, t] of ay.ticks.filter(([p]) => p !== 0 && p !== 1)) text.put(t, left - 4, yAt(p) + 4, yOpts);
  ctx.font = "11px sans-serif";
  const yTitle = shorten(ctx, yDim.label, bottom - top);
  const titleWidth = ctx.measureText(yTitle).width;
  ctx.save(); ctx.translate(12, (top + bottom) / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center";
  ctx.fillText(yTitle, 0, 0); ctx.restore();
  text.reserve([4, (top + bottom - titleWidth) / 2, 15, (top + bottom + titleWidth) / 2, yTitle]);
  canvas.dataset.labels = text.json();
  let dimmed = 0;
  for (const [px, py, id] of pts) {
    const out = kept !== null && !kept.has(id);
    dimmed += out ? 1 : 0;
    ctx.fillStyle = out ? "rgba(160,160,160,0.25)" : "rgba(31,119,180,0.75)";
    ctx.beginPath(); ctx.arc(px, py, 3.5, 0, 2 * Math.PI); ctx.fill();
  }
  canvas.dataset.dimmed = String(dimmed);
  canvas.title = `click a point to open its run\n${axisRange(xDim, ax)}\n${axisRange(yDim, ay)}`;
  canvas.addEventListener("click", (ev) => {
    const r = canvas.getBoundingClientRect();
    const mx = ev.clientX - r.left, my = ev.clientY - r.top;
    let best = null, bd = 64;
    for (const p of pts) { const d = (p[0] - mx) ** 2 + (p[1] - my) ** 2; if (d < bd) { bd = d; best = p; } }
    if (best) onClick(best[2]);
  });
  canvas.dataset.points = String(pts.length);
  container.dataset.ready = "1";
}
