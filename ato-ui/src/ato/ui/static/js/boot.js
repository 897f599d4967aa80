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
  if (page === "runs") {
    urls.push(url("runs", ["project", "where", "tags", "status"].map((k) => [k, params.get(k)])));
  } else if (page === "charts" && params.get("runs")) {
    urls.push(url("runs", [["ids", params.get("runs").split(",").filter(Boolean).join(",")]]));
  } else if (page === "run" && /^\d+$/.test(parts[1] || "")) {
    urls.push("/api/run/" + parts[1]);
  }
  window.__atoEarly = new Map(urls.map((u) => [u, fetch(u, { credentials: "same-origin" })]));
})();
