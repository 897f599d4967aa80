// Starts the first page's data requests while the modules load (a classic script, run
// before any module): util.js's api() takes each one over once, by its exact URL.
(() => {
  const hash = location.hash.replace(/^#/, "") || "/runs";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  const url = (name, values) => {
    const qs = new URLSearchParams();
    for (const [k, v] of values) if (v) qs.set(k, v);
    return "/api/" + name + (qs.toString() ? "?" + qs : "");
  };
  const urls = ["/api/info"];
  const page = parts[0] || "runs";
  let charts = null;
  if (page === "runs") {
    urls.push(url("runs", ["project", "where", "tags", "status"].map((k) => [k, params.get(k)])));
  } else if (page === "charts" && params.get("runs")) {
    charts = url("runs", [["ids", params.get("runs").split(",").filter(Boolean).join(",")]]);
    urls.push(charts);
  } else if (page === "run" && /^\d+$/.test(parts[1] || "")) {
    urls.push("/api/run/" + parts[1]);
  }
  const early = window.__atoEarly = new Map(urls.map((u) => [u, fetch(u, { credentials: "same-origin" })]));
  if (!charts) return;
  // The charts page: as soon as its runs are known (their order, their metric keys), the
  // series of the first row of cards, as charts.js's load() asks for them (same URL; its
  // budget, two points per pixel of a card's plot, measured on a probe card). The first
  // chart board takes the Map (URL -> response) once; a card whose own budget differs
  // by over 10 % (a window resized meanwhile) asks anew.
  window.__atoEarlySeries = early.get(charts).then((resp) => resp.ok && resp.clone().json()).then((data) => {
    const view = document.getElementById("view");
    if (!data || !data.runs.length || !view) return null;
    const make = (tag, name, ...children) => {
      const node = document.createElement(tag);
      node.className = name;
      node.append(...children);
      return node;
    };
    const body = make("div", "chart-body");
    const probe = make("div", "cards", make("section", "card", body));
    probe.style.visibility = "hidden";
    view.append(probe);
    const width = body.clientWidth;
    const columns = getComputedStyle(probe).gridTemplateColumns.split(" ").length;
    probe.remove();
    const budget = window.__atoChartBudget = Math.round(Math.max(width, 300) * 2);
    const x = params.get("x");
    const series = new Map();
    for (const key of data.metric_keys.slice(0, columns)) {
      const u = url("series", [["runs", data.runs.map((r) => r.id).join(",")], ["key", key],
        ["max_points", budget], ["times", x === "wall" || x === "rel" ? "" : "0"], ["format", "f64"]]);
      series.set(u, fetch(u, { credentials: "same-origin" }));
    }
    return series;
  }).catch(() => null);
})();
