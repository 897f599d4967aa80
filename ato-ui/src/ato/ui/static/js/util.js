// Small DOM and data helpers. Every value from the database reaches the page through
// textContent / attributes set by el(): never through innerHTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k === "class") node.className = v;
    else if (k === "testid") node.dataset.testid = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// `prefetched`: a Map (URL -> fetch promise) of requests already on their way, besides
// boot.js's window.__atoEarly; each is used once.
// JSON text parsed with every integer past Number.MAX_SAFE_INTEGER a BigInt of the exact
// digits the API wrote (a Number rounds 2^63 - 1 to 9223372036854776000). For display: a
// BigInt mixes with no Number, so a view keeps the plain parse for its logic.
export function parseExactInts(text) {
  return JSON.parse(text, (k, v, ctx) => (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)
    && typeof ctx?.source === "string" && /^-?[0-9]+$/.test(ctx.source) ? BigInt(ctx.source) : v));
}

// `exact`: the answer also carries, as its non-enumerable `exact`, the same answer with
// big integers exact (parseExactInts).
export async function api(path, params = {}, prefetched = null, exact = false) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") qs.set(k, v);
  }
  const url = "/api/" + path + (qs.toString() ? "?" + qs : "");
  // The first request of a page may already be on its way (boot.js): used once.
  const from = [window.__atoEarly, prefetched].find((m) => m?.has(url));
  const early = from?.get(url);
  if (from) from.delete(url);
  const resp = await (early || fetch(url, { credentials: "same-origin" }));
  let data;
  try {
    const text = await resp.text();
    data = JSON.parse(text);
    if (exact && resp.ok) Object.defineProperty(data, "exact", { value: parseExactInts(text), enumerable: false });
  } catch { data = { error: resp.statusText }; }
  if (!resp.ok) {
    const err = new Error(data.error || resp.statusText);
    err.status = resp.status;  // 404: the thing asked for does not exist (a notFound view)
    throw err;
  }
  return data;
}

// The base64 of little-endian doubles (/api/series?format=f64) as an array of numbers.
export function f64(text) {
  if (!text) return [];
  const bytes = Uint8Array.fromBase64 ? Uint8Array.fromBase64(text)
    : Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8));
}

export function num(v) {
  if (v === "inf") return Infinity;
  if (v === "-inf") return -Infinity;
  if (v === "nan") return NaN;
  return v;
}

// A tag as the CLI writes it in its tables: one empty, with leading or trailing space,
// or holding a comma or a quote is quoted as JSON (" sp ", "", "a,b"), so a chip tells
// it apart from another; every other tag is itself. Shown as text, never as HTML.
export function tagText(t) {
  const s = String(t);
  return !s || s.includes(",") || s.includes('"') || s !== s.trim() ? JSON.stringify(s) : s;
}

export function tagChip(t) {
  const text = tagText(t);
  return el("span", { class: "tag", text, title: text });
}

export function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") {
    // non-finite as the API and the Run page write them (never "Infinity")
    if (Number.isNaN(v)) return "nan";
    if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
    // ~6 significant digits, no padded zeros: 1e-4 (not 1.000e-4), -1e29, 0.0031623
    const a = Math.abs(v);
    if (Number.isInteger(v) && a < 1e15) return String(v);
    const n = +v.toPrecision(6);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? n.toExponential().replace("e+", "e") : String(n);
  }
  if (typeof v === "object") return JSON.stringify(v);
  // an empty string is a value, not a missing one ("–")
  if (v === "") return '""';
  // as a config and the where filter write them (`flag == True`; JSON's true is refused there)
  if (typeof v === "boolean") return v ? "True" : "False";
  return String(v);
}

// The zone every date and time on the page is written in: UTC, whatever the browser's
// zone (the tracker stores UTC, and `ato runs` prints it), named beside each time.
export const TZ = "UTC";

// A time (seconds since the epoch) as "2026-12-01 00:50:04" in UTC; the caller labels it
// with TZ (a column header "start (UTC)", or fmtWhen's suffix).
// `digits` (0–3) adds that many sub-second digits, truncated from the millisecond:
// fmtTime(t, 3) is "2026-12-01 00:50:04.125".
export function fmtTime(t, digits = 0) {
  if (t === null || t === undefined) return "–";
  const ms = Math.round(t * 1000);  // 1764550204.125 is not exact in binary
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  const frac = digits > 0 ? "." + String(((ms % 1000) + 1000) % 1000).padStart(3, "0").slice(0, Math.min(digits, 3)) : "";
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}${frac}`;
}

// A time with its zone, for text outside a labelled column: "2026-12-01 00:50:04 UTC".
export function fmtWhen(t) {
  return t === null || t === undefined ? "–" : `${fmtTime(t)} ${TZ}`;
}

// A time as ISO 8601 with its offset and milliseconds, "2026-12-01T00:50:04.125+00:00":
// CSV cells, and the tooltip of a time shown to the second.
export function isoTime(t) {
  if (t === null || t === undefined || !Number.isFinite(t)) return "";
  return new Date(t * 1000).toISOString().replace("Z", "+00:00");
}

// The full value behind fmt()'s rounding, for a tooltip (title): every digit a number has
// (JavaScript's shortest round-trip form, as the API sent it: 0.123456789012), non-finite
// ones as the API spells them. Null where fmt() already shows it all (no tooltip needed).
export function exact(v) {
  if (typeof v !== "number") return null;
  const full = Number.isNaN(v) ? "nan" : !Number.isFinite(v) ? (v > 0 ? "inf" : "-inf") : String(v);
  return full === fmt(v) ? null : full;
}

// A duration's tooltip: the seconds behind fmtDuration's rounding.
export function exactDuration(s) {
  return s === null || s === undefined || !Number.isFinite(s) ? null : `${s} s`;
}

// A run's duration as text: a crashed run's is a lower bound (until its last heartbeat,
// which is its start when it died before its first flush), written "≥ 4 ms".
// A run not ended (running or crashed) is measured until its last heartbeat, by the
// server, the same way on every view: a lower bound, written "≥ ".
const unended = (run) => run.status === "running" || run.status === "crashed";
export function runDuration(run) {
  return (unended(run) && run.duration !== null && run.duration !== undefined ? "≥ " : "") + fmtDuration(run.duration);
}

// A run's duration tooltip: the seconds, and for a run not ended what they measure.
export function runDurationTitle(run) {
  const exact = exactDuration(run.duration);
  if (run.status === "crashed") return `${exact ?? "–"} until its last heartbeat (it stopped without ending)`;
  if (run.status === "running") return `${exact ?? "–"} until its last heartbeat (still running)`;
  return exact;
}

// A duration in seconds as text: "4 ms", "0.25 s"… never "0.0 s" for a short run.
export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  if (s < 0.001) return s <= 0 ? "0 s" : "< 1 ms";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 10) return `${+s.toFixed(2)} s`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} m`;
}

// "1 point", "3 points", "1,234 points": a count with its noun, singular or plural.
export function plural(n, one, many = one + "s") {
  return `${Number(n).toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

// The route lives in the hash: "#/runs?where=lr%3C0.1&status=completed".
export function route() {
  const hash = location.hash.replace(/^#/, "") || "/runs";
  const [path, query] = hash.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent),
           params: new URLSearchParams(query || "") };
}

export function go(path, params) {
  const qs = params ? new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString() : "";
  location.hash = path + (qs ? "?" + qs : "");
}

// Replace the query of the current route without a navigation (filters, sort, options).
export function setParams(updates) {
  const { parts, params } = route();
  for (const [k, v] of Object.entries(updates)) {
    if (v === undefined || v === null || v === "" || v === false) params.delete(k);
    else params.set(k, v);
  }
  const qs = params.toString();
  history.replaceState(null, "", "#/" + parts.map(encodeURIComponent).join("/") + (qs ? "?" + qs : ""));
}

export function download(filename, blob) {
  const a = el("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// An axis tick label: never "0" for a non-zero tick (uPlot's default keeps 3 decimals,
// so a log axis read 1e-4 as 0). Tiny (< 1e-3) and huge (>= 1e6) values are written
// 1e-4, 2.5e-5, 3e6; the rest with up to 12 significant digits (no 0.30000000000000004).
export function tickLabel(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "";
  if (v === 0) return "0";
  const n = Number(v.toPrecision(12));
  const a = Math.abs(n);
  if (a < 1e-3 || a >= 1e6) return n.toExponential().replace("e+", "e");
  return String(n);
}

// The labels of an axis' ticks; `span` is the axis' extent: a tick within float noise of 0
// relative to it reads "0" (a -1e29..1 axis put "221e12" where 0 is).
export function tickLabels(splits, span = 0) {
  return splits.map((v) => (span > 0 && Number.isFinite(v) && Math.abs(v) < span * 1e-9 ? "0" : tickLabel(v)));
}

// A CSV cell: quoted, and a leading = + - @ (spreadsheet formula) neutralised.
export function csvCell(v) {
  let s = v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v));
  // Non-finite numbers are spelled as the API spells them: inf, -inf, nan.
  if (typeof v === "number" && !Number.isFinite(v)) s = Number.isNaN(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  // A spreadsheet evaluates a cell that starts with = + - @ TAB or CR as a formula
  // ("-2+3", "-1+cmd|' /C calc'!A0"); only a cell that is wholly a plain number is safe,
  // so every other such cell (text or "-inf" alike) gets a leading "'".
  if (/^[=+\-@\t\r]/.test(s) && !/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) s = "'" + s;
  return /[",\n\r]/.test(s) || s !== s.trim() ? '"' + s.replace(/"/g, '""') + '"' : s;
}

// The dashboard's event stream of `url`: its "failed" event (the database file removed
// or replaced under the server) is shown and closes the stream, which would otherwise
// reconnect every few seconds.
export function liveSource(url) {
  const source = new EventSource(url);
  source.addEventListener("failed", (ev) => {
    source.close();
    toast(JSON.parse(ev.data).error);
    document.body.dataset.liveFailed = "1";
  });
  return source;
}

export function toast(message) {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 4000);
}

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
  "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"];

export function color(i) { return PALETTE[i % PALETTE.length]; }

// A key some part of which is __dunder__ (__hyperopt_id__, __metric__, search.__budget__):
// bookkeeping a search adds to each trial's config, not a hyperparameter.
export function isBookkeeping(key) {
  return String(key).split(".").some((p) => /^__.+__$/.test(p));
}

// Keys of a flat config whose value is the same in every run are "constant"; the
// __dunder__ bookkeeping keys are set apart as "bookkeeping" (shown only on request)
// unless withBookkeeping.
export function varyingKeys(runs, withBookkeeping = false) {
  const all = new Set();
  for (const r of runs) for (const k of Object.keys(r.config)) all.add(k);
  const varying = [], constant = [], bookkeeping = [];
  for (const k of [...all].sort()) {
    if (!withBookkeeping && isBookkeeping(k)) { bookkeeping.push(k); continue; }
    const first = JSON.stringify(runs[0]?.config[k]);
    if (runs.some((r) => JSON.stringify(r.config[k]) !== first)) varying.push(k);
    else constant.push(k);
  }
  return { varying, constant, bookkeeping };
}

// One "not found" view for every page: a clear message where the thing would be, and a
// link back to the list it belongs to. `box` is the element that takes it (a whole view,
// or one section of a page whose other parts stay).
export function notFound(box, message, backHref, backText) {
  box.append(el("div", { class: "notfound", testid: "not-found" },
    el("p", { class: "error", testid: "error", text: message }),
    backHref ? el("p", {}, el("a", { href: backHref, testid: "back-link", text: `← ${backText}` })) : null));
  return box;
}

export const SEED_KEYS = /(^|\.)(seed|random_seed|rng_seed)$/i;

// A view's URL parameters, read and checked: a value a view does not accept is never
// silently dropped or misused; it is collected (name, value, what is accepted) and shown
// by show() in one box at the top of the view, which still shows what it can (the
// parameter's default). Every accepted value is listed in docs/ui.md.
// The largest run id a tracker holds (a signed 64-bit integer), and the one rule every
// view states for a run id: plain ASCII digits, no sign, leading zero or space, at most
// MAX_RUN_ID — compared as BigInt, never as a Number (which rounds past 2^53).
export const MAX_RUN_ID = 2n ** 63n - 1n;
export const RUN_ID_RULE = `run ids: 1 to ${MAX_RUN_ID} in plain digits`;
export function isRunId(text) {
  return typeof text === "string" && /^[1-9][0-9]*$/.test(text) && BigInt(text) <= MAX_RUN_ID;
}
// A valid run id as the page keeps it: a Number while exact, else its text.
export function runIdValue(text) {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
}

export class UrlParams {
  constructor(params) { this.params = params; this.problems = []; this.names = null; }

  // The parameters this view takes (`project`, the header's picker, is taken by every
  // view): show() names any other one as not a parameter of the view, ignored.
  takes(...names) { this.names = ["project", ...names.flat()]; return this; }

  raw(name) { const v = this.params.get(name); return v === null || v === "" ? null : v; }

  bad(name, value, expected) { this.problems.push({ name, value: String(value), expected }); }

  // One of `values` (strings), else `dflt`; `describe` names them when they are many.
  choice(name, values, dflt = "", describe = null) {
    const v = this.raw(name);
    if (v === null) return dflt;
    if (values.includes(v)) return v;
    this.bad(name, v, describe || `one of ${values.filter((x) => x !== "").join(", ")}`);
    return dflt;
  }

  // "1" is on; absent, empty or "0" off; anything else is reported.
  flag(name) {
    const v = this.raw(name);
    if (v === null || v === "0") return false;
    if (v === "1") return true;
    this.bad(name, v, "1 (on) or 0 (off)");
    return false;
  }

  // A number in [lo, hi]; out of range or not a number: reported, `dflt` used.
  number(name, lo, hi, dflt) {
    const v = this.raw(name);
    if (v === null) return dflt;
    const n = Number(v);
    if (v.trim() !== "" && Number.isFinite(n) && n >= lo && n <= hi) return n;
    this.bad(name, v, `a number from ${lo} to ${hi}`);
    return dflt;
  }

  // A comma-separated list of run ids (isRunId); the others are reported with the one
  // rule every view (and the API) states. An id past 2^53 stays the text typed (a Number
  // would round it to another id).
  ids(name) {
    const v = this.raw(name);
    if (v === null) return [];
    const parts = v.split(",").filter(Boolean);
    const wrong = parts.filter((p) => !isRunId(p));
    if (wrong.length) this.bad(name, wrong.join(","), `${RUN_ID_RULE}, separated by commas`);
    return [...new Set(parts.filter((p) => !wrong.includes(p)).map(runIdValue))];
  }

  // A comma-separated list whose items must be in `known`; unknown ones are reported
  // (`note` ends the message).
  subset(name, known, what, note = "") {
    const v = this.raw(name);
    if (v === null) return null;
    const items = v.split(",").filter(Boolean);
    const wrong = items.filter((k) => !known.includes(k));
    if (wrong.length) this.bad(name, wrong.join(","), `${what}: ${known.join(", ") || "(none here)"}${note}`);
    const good = items.filter((k) => known.includes(k));
    // nothing good left: the view shows what it would without the parameter (its default)
    return good.length || !wrong.length ? good : null;
  }

  // The box naming every bad parameter, first in `view` (nothing when all are good).
  show(view) {
    view.querySelector("[data-testid='param-warning']")?.remove();
    // a parameter given twice: every view reads the first (where=a&where=b filtered by a)
    const named = new Set(this.problems.map((p) => p.name));
    for (const name of new Set(this.params.keys())) {
      const all = this.params.getAll(name);
      if (all.length > 1 && !named.has(name) && (!this.names || this.names.includes(name))) {
        this.problems.push({ name, value: all.join(" & "), text: `${name} is given ${all.length} times (${
          all.map((v) => `${name}=${v}`).join(", ")}): only the first, ${name}=${all[0]}, is used` });
      }
    }
    if (this.names) {
      const seen = new Set(this.problems.map((p) => p.name));
      for (const [name, value] of this.params) {
        if (this.names.includes(name) || seen.has(name)) continue;
        seen.add(name);
        this.problems.push({ name, value, text: `${name}=${value}: not a parameter of this view (it takes ${
          this.names.join(", ")})` });
      }
    }
    if (!this.problems.length) return;
    view.prepend(el("div", { class: "param-warning", testid: "param-warning" },
      el("p", { text: this.problems.length === 1 ? "A URL parameter is not valid and was ignored:" : "URL parameters not valid and ignored:" }),
      el("ul", {}, this.problems.map((p) => el("li", { testid: `param-${p.name}`,
        text: p.text || `${p.name}=${p.value}: expected ${p.expected}` })))));
  }
}
