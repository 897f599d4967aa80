// The single-page app: a hash router over the views.
import { api, clear, el, notFound, route, setParams, toast } from "./util.js";
import { renderRuns } from "./runs.js";
import { renderRun } from "./run.js";
import { renderCharts } from "./charts.js";
import { renderCompare } from "./compare.js";
import { renderSearch } from "./search.js";
import { renderModels } from "./models.js";

const view = document.getElementById("view");
// Where a page that cannot be shown (unknown run, study, model…) links back to.
const BACK = {
  runs: ["#/runs", "runs"], run: ["#/runs", "runs"], charts: ["#/runs", "runs"],
  compare: ["#/runs", "runs"], search: ["#/search", "searches"], models: ["#/models", "models and datasets"],
};
let cleanup = null;

export const state = { info: null };

async function loadInfo() {
  state.info = await api("info");
  document.getElementById("db").textContent = state.info.db;
  const select = clear(document.getElementById("project"));
  select.append(el("option", { value: "", text: "all projects" }));
  for (const p of state.info.projects) {
    select.append(el("option", { value: p.name, text: p.name }));
  }
  select.value = route().params.get("project") || "";
  select.addEventListener("change", () => {
    const { parts } = route();
    // the models list filters by project too; any other page goes to the runs
    if (parts[0] === "models") location.hash = "#/models";
    else if (parts[0] !== "runs") location.hash = "#/runs";
    setParams({ project: select.value });
    render();
  });
}

async function render() {
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  const { parts, params } = route();
  document.getElementById("project").value = params.get("project") || "";
  clear(view);
  view.removeAttribute("data-ready");
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === "#/" + (parts[0] || "runs"));
  }
  try {
    const page = parts[0] || "runs";
    if (page === "runs") cleanup = await renderRuns(view, params);
    else if (page === "run") cleanup = await renderRun(view, parts[1], params);
    else if (page === "charts") cleanup = await renderCharts(view, params);
    else if (page === "compare") cleanup = await renderCompare(view, params);
    else if (page === "search") cleanup = await renderSearch(view, parts[1], params);
    else if (page === "models") cleanup = await renderModels(view, parts, params);
    else notFound(view, `No page ${page}`, "#/runs", "runs");
  } catch (e) {
    console.error(e);
    // Said once, in the page (a toast as well would repeat it), with the way back to the
    // list the missing thing would be in.
    const [href, label] = BACK[parts[0] || "runs"] || BACK.runs;
    notFound(view, e.message, href, label);
  }
  view.dataset.ready = "1";
  window.__atoEarly?.clear();  // an early request no page took is never served later
}

window.addEventListener("hashchange", render);
// The page and the project list load side by side.
render();
loadInfo().catch((e) => toast(e.message));
