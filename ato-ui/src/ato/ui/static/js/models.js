// Models and datasets (read-only): the registered assets, one asset's versions, alias
// history and lineage, and a run's inputs and outputs. Every value from the database
// reaches the page through el() (textContent and attributes), never as HTML; the view
// lives in the URL (#/models?kind=…&q=…, #/models/KIND/NAME?project=…&v=…&alias=…).
import { api, el, exact, fmt, fmtTime, fmtWhen, go, isoTime, notFound, route, setParams, TZ, UrlParams } from "./util.js";

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

// A size cell: rounded to KiB/MiB…, the exact byte count in its tooltip.
const sizeCell = (n) => el("td", { class: "num", text: fmtBytes(n),
  title: n === null || n === undefined || n < 1024 ? null : `${Number(n).toLocaleString("en-US")} bytes` });

// A number cell (step, score…): rounded by fmt(), every digit in its tooltip.
const numCell = (v, testid) => el("td", { class: "num", testid, text: fmt(v), title: exact(v) });

// A time cell (UTC, as its column header says): milliseconds in the tooltip (ISO 8601).
const timeCell = (t) => el("td", { text: fmtTime(t), title: isoTime(t) || null });

// The hash of an asset page (each part encoded: names may hold '/', '?' or '#').
export function assetHref(kind, name, project, version) {
  const qs = new URLSearchParams();
  if (project) qs.set("project", project);
  if (version !== undefined && version !== null) qs.set("v", version);
  const q = qs.toString();
  return `#/models/${encodeURIComponent(kind)}/${encodeURIComponent(name)}${q ? "?" + q : ""}`;
}

const runLink = (id) => (id === null || id === undefined ? el("span", { class: "muted", text: "–" })
  : el("a", { href: `#/run/${Number(id)}`, testid: `run-link-${Number(id)}`, text: `#${Number(id)}` }));

const digest = (d) => el("span", { class: "mono", title: d || "", text: d ? d.slice(0, 12) : "–" });

const aliasChips = (aliases) => aliases.map((a) => el("span", { class: a === "latest" ? "tag alias latest" : "tag alias", text: a }));

export const STORAGE = {
  stored: "stored",
  "in place": "recorded in place",
  reference: "reference data: not copied, not verified",
};

function storageLabel(v) {
  return el("span", { class: `storage st-${v.storage.replace(" ", "-")}`, testid: "storage", text: STORAGE[v.storage] || v.storage });
}

function table(testid, headers, rows) {
  return el("table", { class: "grid", testid },
    el("tr", {}, headers.map((h) => el("th", { text: h }))), rows);
}

function unavailable(view, reason) {
  view.append(el("p", { class: "muted", testid: "registry-unavailable", text: reason }));
}

// ---------------------------------------------------------------------------- list
export async function renderModels(view, parts, params) {
  if (parts.length >= 3) return renderAsset(view, parts[1], parts.slice(2).join("/"), params);
  const up = new UrlParams(params).takes("kind", "q");
  const kind = up.choice("kind", ["model", "dataset"], "");
  const data = await api("registry", { kind, project: params.get("project") });
  view.append(el("h2", { text: "Models and datasets" }));
  up.show(view);
  if (!data.available) return unavailable(view, data.reason);
  const q = params.get("q") || "";
  const kindSelect = el("select", { testid: "kind-select",
    onchange: () => go("/models", { ...Object.fromEntries(route().params), kind: kindSelect.value }) },
    [["", "models and datasets"], ["model", "models"], ["dataset", "datasets"]].map(([v, t]) => el("option", { value: v, text: t })));
  kindSelect.value = kind;
  const search = el("input", { type: "search", placeholder: "name contains…", value: q, testid: "asset-filter",
    oninput: () => { setParams({ q: search.value }); fill(); } });
  const count = el("span", { class: "count", testid: "asset-count" });
  const body = el("div");
  view.append(el("div", { class: "filters" }, count, kindSelect, search), body);

  function fill() {
    const needle = search.value.toLowerCase();
    const shown = data.assets.filter((a) => !needle || a.name.toLowerCase().includes(needle));
    count.textContent = `${shown.length} of ${data.assets.length}`;
    count.dataset.count = String(shown.length);
    body.replaceChildren(shown.length ? table("assets", ["name", "kind", "project", "versions", "latest", "aliases", "size", "description"],
      shown.map((a) => el("tr", { testid: "asset-row", "data-name": a.name, "data-kind": a.kind },
        el("td", {}, el("a", { href: assetHref(a.kind, a.name, a.project), testid: "asset-link", text: a.name })),
        el("td", { text: a.kind }),
        el("td", { text: a.project }),
        el("td", { class: "num", text: fmt(a.versions) }),
        el("td", { class: "num", text: a.latest === null ? "–" : `v${a.latest}` }),
        // every alias, latest too (as `ato data list` and the versions table show it)
        el("td", {}, Object.entries(a.aliases)
          .map(([k, v]) => el("span", { class: "tag alias", text: `${k} → v${v}` }))),
        sizeCell(a.size),
        el("td", { class: "desc" }, ...(a.tags || []).map((t) => el("span", { class: "tag", testid: "asset-tag", text: t })),
          (a.tags || []).length && a.description ? " " : "", a.description ?? ""))))
      : el("p", { class: "muted", testid: "no-assets", text: data.assets.length ? "nothing matches the filter"
        : `no ${kind ? kind + "s" : "models or datasets"} registered${params.get("project") ? ` in project ${params.get("project")}` : ""} yet (logger.log_model / logger.use_dataset)` }));
  }
  fill();
  return null;
}

// ---------------------------------------------------------------------------- one asset
async function renderAsset(view, kind, name, params) {
  const project = params.get("project") || "";
  const up = new UrlParams(params).takes("v", "alias");
  // The whole alias history comes, and is filtered here: an alias this asset never had is
  // named (with the ones it has) and the whole history shown, not an empty one.
  let alias = params.get("alias") || "";
  const data = await api("registry/asset", { name, kind, project });
  view.append(el("p", { class: "crumbs" }, el("a", { href: "#/models", text: "Models and datasets" }), " / ",
    el("span", { text: kind })));
  if (!data.available) return unavailable(view, data.reason);
  const asset = data.asset;
  view.append(el("h2", { testid: "asset-title" }, el("span", { text: asset.name }), " ",
    el("span", { class: "tag", text: asset.kind }), " ", el("span", { class: "muted", text: asset.project })));
  if (asset.description) view.append(el("p", { class: "desc", testid: "asset-description", text: asset.description }));
  if ((asset.tags || []).length) view.append(el("p", { testid: "asset-tags" },
    ...asset.tags.map((t) => el("span", { class: "tag", text: t }))));
  const isModel = kind === "model";
  const known = [...new Set([...Object.keys(asset.aliases), ...data.history.map((m) => m.alias)])].sort();
  if (alias && !known.includes(alias)) {
    up.bad("alias", alias, `an alias of ${asset.name}: ${known.join(", ") || "(it has none)"}`);
    alias = "";
  }
  const history = alias ? data.history.filter((m) => m.alias === alias) : data.history;
  // v: a version number (an unknown one is said in the lineage box, the page stays)
  const vParam = up.raw("v");
  if (vParam !== null && !/^\d+$/.test(vParam)) up.bad("v", vParam, "a version number (1, 2, …)");
  const selected = vParam !== null && /^\d+$/.test(vParam) ? Number(vParam) : asset.latest;
  up.show(view);
  view.append(el("h3", { text: `versions (${data.versions.length})` }),
    table("versions", ["version", "digest", "size", "files", ...(isModel ? ["step", "score"] : []), "run", `created (${TZ})`, "by", "aliases", "state"],
      data.versions.map((v) => el("tr", {
        testid: "version-row", "data-version": v.version, class: v.version === selected ? "sel clickable" : "clickable",
        onclick: (e) => { if (e.target.closest("a")) return; go(`/models/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`, { project: asset.project, v: v.version, alias }); },
      },
      el("td", {}, el("a", { href: assetHref(kind, name, asset.project, v.version), text: `v${v.version}` })),
      el("td", {}, digest(v.digest)),
      sizeCell(v.size),
      el("td", { class: "num", text: fmt(v.file_count) }),
      isModel ? [numCell(v.step), numCell(v.score, "version-score")] : null,
      el("td", {}, runLink(v.run)),
      timeCell(v.created),
      el("td", { class: "who", text: v.created_by ?? "–" }),
      el("td", {}, aliasChips(v.aliases)),
      el("td", { text: v.state === "live" ? (v.storage === "stored" ? "live" : STORAGE[v.storage]) : v.state })))));
  const lineage = el("section", { class: "box lineage", testid: "lineage" });
  view.append(lineage);
  if (selected !== null && selected !== undefined) {
    // An unknown version (?v=99) is said once, in the lineage box; versions and alias
    // history stay, with a link to the latest version.
    try {
      await renderLineage(lineage, kind, name, asset.project, selected);
    } catch (e) {
      if (e.status !== 404 && e.status !== 400) throw e;
      lineage.replaceChildren();
      notFound(lineage, e.message, assetHref(kind, name, asset.project),
        asset.latest === null ? asset.name : `latest version (v${asset.latest})`);
    }
  }
  // the alias history: every move, filterable by alias (in the URL)
  const aliasSelect = el("select", { testid: "alias-filter", onchange: () => go(`/models/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`, { project: asset.project, v: params.get("v"), alias: aliasSelect.value }) },
    el("option", { value: "", text: "every alias" }), known.map((a) => el("option", { value: a, text: a })));
  aliasSelect.value = alias;
  view.append(el("div", { class: "toolbar" }, el("h3", { text: "alias history" }), aliasSelect),
    history.length ? table("alias-history", [`when (${TZ})`, "alias", "from", "to", "by", "run"],
      history.map((m) => el("tr", { testid: "alias-move" },
        timeCell(m.at),
        el("td", {}, aliasChips([m.alias])),
        el("td", { text: m.from === null ? "–" : `v${m.from}` }),
        el("td", { text: m.to === null ? "removed" : `v${m.to}` }),
        el("td", { class: "who", text: m.actor ?? "–" }),
        el("td", {}, runLink(m.run)))))
      : el("p", { class: "muted", text: "no alias moves" }));
  return null;
}

async function renderLineage(box, kind, name, project, ref) {
  const data = await api("registry/version", { name, kind, project, ref });
  const v = data.version;
  box.dataset.version = v.version;
  box.append(el("h3", { text: `lineage of v${v.version}` }),
    el("dl", { class: "facts" },
      el("dt", { text: "URI" }), el("dd", { class: "mono", testid: "version-uri", text: v.uri }),
      el("dt", { text: "digest" }), el("dd", { class: "mono", text: v.digest }),
      el("dt", { text: "data" }), el("dd", {}, storageLabel(v)),
      v.reference ? [el("dt", { text: "reference" }), el("dd", { class: "mono", text: v.reference })] : null,
      v.source ? [el("dt", { text: "source" }), el("dd", { class: "mono", text: v.source })] : null,
      v.meta ? [el("dt", { text: "meta" }), el("dd", { class: "mono", testid: "version-meta", text: fmt(v.meta) })] : null));
  if (kind === "model") {
    const made = data.produced_by;
    if (!made.run) {
      box.append(el("p", { class: "muted", testid: "no-run", text: "registered outside a run: no config or data recorded" }));
      appendUses(box, kind, data);
      return;
    }
    const r = made.run;
    box.append(el("p", { testid: "produced-by" }, "produced by run ", runLink(r.id), " ",
      el("span", { class: `status s-${r.status}`, text: r.status }), " started ",
      el("span", { testid: "produced-started", text: fmtWhen(r.start), title: isoTime(r.start) || null }), " · ",
      el("a", { href: `#/run/${Number(r.id)}`, testid: "config-link", text: "its config" }),
      ` · ${made.fingerprints} code fingerprint${made.fingerprints === 1 ? "" : "s"}`),
    el("h3", { text: "what it used" }),
    made.inputs.length ? table("lineage-inputs", ["name", "kind", "version", "digest", "data"], made.inputs.map((d) => el("tr", {},
      el("td", {}, el("a", { href: assetHref(d.kind, d.name, d.project, d.version), text: d.name })),
      el("td", { text: d.kind }), el("td", { text: `v${d.version}` }), el("td", {}, digest(d.digest)),
      el("td", {}, storageLabel(d)))))
      : el("p", { class: "muted", text: "no dataset recorded" }));
  }
  appendUses(box, kind, data);
}

// The runs that used a version (use_dataset; use_model for a model) and what they produced.
function appendUses(box, kind, data) {
  const runs = data.runs || [], down = data.downstream || [];
  box.append(el("h3", { text: kind === "model" ? "runs that started from it" : "runs that used it" }),
    runs.length ? table("lineage-runs", ["run", "project", "status", `started (${TZ})`], runs.map((r) => el("tr", {},
      el("td", {}, runLink(r.id)), el("td", { text: r.project }),
      el("td", {}, el("span", { class: `status s-${r.status}`, text: r.status })), timeCell(r.start))))
      : el("p", { class: "muted", text: "no run used this version" }),
    el("h3", { text: "what they produced" }),
    down.length ? table("lineage-downstream", ["name", "version", "aliases", "run"], down.map((d) => el("tr", {},
      el("td", {}, el("a", { href: assetHref(d.kind, d.name, d.project, d.version), text: d.name })),
      el("td", { text: `v${d.version}` }), el("td", {}, aliasChips(d.aliases)), el("td", {}, runLink(d.run)))))
      : el("p", { class: "muted", text: "no model produced from it" }));
}

// ---------------------------------------------------------------------------- run page
// A run's inputs and outputs: a promise that never rejects (an error is its "error").
export function fetchRunIO(runId) {
  return api(`registry/run/${runId}`).catch((e) => ({ error: e.message }));
}

// The "Inputs" and "Outputs" sections of a run page, from fetchRunIO's promise.
export async function appendRunIO(view, pending) {
  const box = el("section", { class: "box run-io", testid: "run-io" });
  view.append(box);
  const data = await pending;
  if (data.error) {
    box.append(el("p", { class: "error", testid: "run-io-error", text: `inputs and outputs: ${data.error}` }));
    return;
  }
  if (!data.available) {
    box.append(el("p", { class: "muted", testid: "registry-unavailable", text: data.reason }));
    return;
  }
  box.append(el("h3", { text: "Inputs" }),
    data.inputs.length ? table("run-inputs", ["dataset", "version", "digest", "size", "files", "data"], data.inputs.map((v) => el("tr", { testid: "input-row" },
      el("td", {}, el("a", { href: assetHref(v.kind, v.name, v.project, v.version), text: v.name })),
      el("td", { text: `v${v.version}` }), el("td", {}, digest(v.digest)),
      sizeCell(v.size), el("td", { class: "num", text: fmt(v.file_count) }),
      el("td", {}, storageLabel(v)))))
      : el("p", { class: "muted", testid: "no-inputs", text: "no dataset versions recorded (logger.use_dataset)" }),
    el("h3", { text: "Outputs" }),
    data.outputs.length ? table("run-outputs", ["model", "version", "digest", "size", "step", "aliases"], data.outputs.map((v) => el("tr", { testid: "output-row" },
      el("td", {}, el("a", { href: assetHref(v.kind, v.name, v.project, v.version), text: v.name })),
      el("td", { text: `v${v.version}` }), el("td", {}, digest(v.digest)),
      sizeCell(v.size), numCell(v.step),
      el("td", {}, aliasChips(v.aliases)))))
      : el("p", { class: "muted", testid: "no-outputs", text: "no model versions produced (logger.log_model)" }));
}
