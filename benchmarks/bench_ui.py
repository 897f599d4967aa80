"""Dashboard performance (issue #10's targets), written to benchmarks/results/ui.json.

    python benchmarks/bench_ui.py [--quick] [--baseline DIR] [--chart-only] [--repeat N]

Drives Debian's Chromium (/usr/bin/chromium) with Playwright against real `ato ui`
processes over SQLite files in a temporary directory. Medians of repeated runs; with
``--baseline DIR`` (a checkout of an earlier revision, e.g. ``git worktree add DIR REV``)
every measure also runs against ``ato ui`` processes of that code (its ``*/src`` put first
on ``PYTHONPATH``), interleaved with the current code's, so that the "before" and "after"
columns saw the same load. The load average is recorded with the results.
``--chart-only`` measures the chart alone (written to ``benchmarks/results/ui-chart.json``,
leaving ``ui.json`` as it was): the quick way to re-run the one target that depends most
on the machine's load.

- `ato ui` process start -> first HTTP 200 of the page;
- the runs page of 1,000 runs x 3 metrics until every row is reachable (the table's ready
  marker and its count of 1,000, then the last row scrolled into view);
- one chart of 100 runs x 10,000 steps (each with one spike) drawn;
- a new point visible in the page after the logger's flush;
- bytes the browser downloads for the runs page (transfer sizes, gzip as served);
- ato-ui's added install size (its wheel plus Starlette, uvicorn and their dependencies).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from _common import write_results  # noqa: E402

from tests.ui.populate import logger_for, populate_long, populate_many  # noqa: E402

ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def code_env(baseline: Path | None) -> dict:
    """The environment of an ``ato ui`` process running the current code, or (with
    ``baseline``) the code of that checkout: its distributions' ``src`` folders first on
    ``PYTHONPATH`` (the entry points stay those installed)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # As pip installs a wheel: with bytecode.  This checkout's editable sources are not
    # compiled, and PYTHONDONTWRITEBYTECODE (set on our machines) would make every start
    # compile ato's modules anew (about 0.1 s); the bytecode goes to a cache of its own
    # per code version, written by a first, untimed start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "bench-ui-pycache" /
                                     ("baseline" if baseline is not None else "current"))
    if baseline is not None:
        srcs = sorted(str(p) for p in baseline.glob("ato-*/src"))
        env["PYTHONPATH"] = os.pathsep.join(srcs + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def launch(url: str, env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "ato.cli", "ui", url, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    found = re.search(r"http://\S+", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"ato ui printed no URL: {line!r} {proc.stderr.read()}")
    return proc, found.group(0)


def first_200(link: str) -> None:
    while True:
        try:
            with urllib.request.urlopen(link, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.005)


def start_to_200(url: str, repeat: int, envs: dict) -> dict:
    samples: dict = {name: [] for name in envs}
    for i in range(repeat + 1):  # the first round writes the bytecode and is not counted
        for name, env in envs.items():
            t0 = time.perf_counter()
            proc, link = launch(url, env)
            first_200(link)
            if i:
                samples[name].append(time.perf_counter() - t0)
            proc.terminate()
            proc.wait(10)
    return {name: statistics.median(s) for name, s in samples.items()}


def serve(url: str, env: dict) -> tuple[subprocess.Popen, str]:
    """A running ``ato ui`` whose database is already open (one API request made)."""
    proc, link = launch(url, env)
    first_200(link)
    with urllib.request.urlopen(link + "api/info", timeout=60) as r:
        r.read()
    return proc, link


def runs_page(browser, base: str, last_id: int) -> tuple[float, int]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    t0 = time.perf_counter()
    page.goto(base + "#/runs?project=sweep")
    page.wait_for_selector("[data-testid='runs-table'][data-ready='1']", state="attached",
                           timeout=60_000)
    assert page.get_attribute("[data-testid='row-count']", "data-count") == "1000"
    page.eval_on_selector("[data-testid='runs-table']", "t => t.scrollTop = t.scrollHeight")
    page.wait_for_selector(f"[data-testid='row-{last_id}']")
    seconds = time.perf_counter() - t0
    transferred = page.evaluate(
        "() => performance.getEntriesByType('navigation').concat("
        "performance.getEntriesByType('resource')).reduce((a, e) => a + e.transferSize, 0)")
    page.close()
    return seconds, transferred


#: Installed before the page's scripts: the page's own clock (ms since navigation start)
#: when a chart card first gets ``data-drawn`` (uPlot's draw hook), free of the time
#: Playwright takes to start the navigation and to notice the attribute.
DRAWN_AT = """new MutationObserver((changes, observer) => {
  for (const c of changes) {
    if (c.attributeName === "data-drawn" && c.target.dataset.testid === "chart-card") {
      window.__atoDrawnAt = performance.now(); observer.disconnect(); return;
    }
  }
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-drawn"]});"""


def chart(browser, base: str, ids) -> tuple[float, str, float]:
    """``(seconds from goto to the drawn card seen by Playwright, the badge, seconds from
    the navigation's start to the draw by the page's clock)``."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.add_init_script(DRAWN_AT)
    t0 = time.perf_counter()
    page.goto(base + "#/charts?runs=" + ",".join(map(str, ids)))
    page.wait_for_selector("[data-testid='chart-card'][data-drawn]", state="attached",
                           timeout=180_000)
    seconds = time.perf_counter() - t0
    in_page = page.evaluate("window.__atoDrawnAt") / 1000
    badge = page.inner_text("[data-testid='points-badge']")
    page.close()
    return seconds, badge, in_page


def pages_interleaved(browser, bases: dict, last_id: int, long_ids, repeat: int) -> dict:
    """Medians of the runs page and the chart per code version, the versions taking turns."""
    out = {name: {"page": [], "chart": [], "bytes": 0, "badge": ""} for name in bases}
    for _ in range(repeat):
        for name, base in bases.items():
            seconds, out[name]["bytes"] = runs_page(browser, base, last_id)
            out[name]["page"].append(seconds)
            # the first load of a server reads the database (later ones may be answered
            # from the server's cache of /api/runs, kept until the database changes)
            out[name].setdefault("page_cold", seconds)
        for name, base in bases.items():
            seconds, out[name]["badge"], _ = chart(browser, base, long_ids)
            out[name]["chart"].append(seconds)
    for entry in out.values():
        entry["page"] = statistics.median(entry["page"])
        entry["chart"] = statistics.median(entry["chart"])
    return out


def live(browser, base: str, url: str, repeat: int) -> float:
    log = logger_for(url, "live")
    run_id = log.run()
    log.log_metric("loss", 1.0, 0)
    log.flush()
    page = browser.new_page()
    page.goto(base + f"#/charts?runs={run_id}")
    page.wait_for_selector("[data-testid='chart-card'][data-last-step='0']", state="attached")
    page.wait_for_timeout(500)
    samples = []
    for step in range(1, repeat + 1):
        log.log_metric("loss", 1.0 / (step + 1), step)
        log.flush()
        t0 = time.perf_counter()
        page.wait_for_selector(f"[data-testid='chart-card'][data-last-step='{step}']",
                               state="attached")
        samples.append(time.perf_counter() - t0)
    log.finish()
    page.close()
    return statistics.median(samples)


def install_size() -> tuple[int, list[str]]:
    """Bytes of ato-ui's wheel contents plus every distribution it pulls in beyond ato-core."""
    seen, todo, total = set(), ["starlette", "uvicorn"], 0
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        dist = md.distribution(name)
        total += sum((f.size or 0) for f in dist.files or [])
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            dep = re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0]
            if dep and sys.version_info >= (3, 11) and dep in ("exceptiongroup", "tomli"):
                continue
            try:
                md.distribution(dep)
            except md.PackageNotFoundError:
                continue
            todo.append(dep)
    static = ROOT / "ato-ui/src/ato"
    total += sum(p.stat().st_size for p in static.rglob("*") if p.is_file()
                 and "__pycache__" not in p.parts)
    return total, sorted(seen)


def chart_only(quick: bool, baseline: Path | None, repeat: int) -> None:
    """The chart of 100 (``quick``: 20) runs x 10,000 steps alone, the code versions taking
    turns; results in ``benchmarks/results/ui-chart.json``."""
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    url = f"sqlite:///{tmp / 'ui.db'}"
    t0 = time.perf_counter()
    long_ids = populate_long(url, 20 if quick else 100, 10_000)
    print(f"database written in {time.perf_counter() - t0:.1f} s")
    envs = {"after": code_env(None)}
    if baseline is not None:
        envs["before"] = code_env(baseline)
    servers = {name: serve(url, env) for name, env in envs.items()}
    samples: dict = {name: [] for name in envs}
    in_page: dict = {name: [] for name in envs}
    badge = ""
    load = [os.getloadavg()[0]]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for _, base in servers.values():  # one untimed load each
                chart(browser, base, long_ids)
            for _ in range(repeat):
                for name, (_, base) in servers.items():
                    seconds, shown, drawn = chart(browser, base, long_ids)
                    samples[name].append(seconds)
                    in_page[name].append(drawn)
                    badge = shown if name == "after" else badge
            browser.close()
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    load.append(os.getloadavg()[0])
    after = statistics.median(samples["after"])
    row = {"measure": f"one chart, {len(long_ids)} runs x 10,000 steps drawn ({badge})",
           "value": f"{after:.3f} s", "target": "< 1 s", "ok": after < 1,
           "samples": [round(x, 3) for x in samples["after"]],
           "page_clock": f"{statistics.median(in_page['after']):.3f} s",
           "page_clock_samples": [round(x, 3) for x in in_page["after"]]}
    print(f"  the page's own clock, navigation start -> drawn: {row['page_clock']}")
    if baseline is not None:
        row["before"] = f"{statistics.median(samples['before']):.3f} s"
        row["before_samples"] = [round(x, 3) for x in samples["before"]]
        row["before_page_clock"] = f"{statistics.median(in_page['before']):.3f} s"
        print(f"  before: {row['measure']}: {row['before']} "
              f"(page clock {row['before_page_clock']})")
    write_results("ui-chart", [row], {"quick": quick, "repeat": repeat,
                                      "load_average_1min": [round(x, 2) for x in load],
                                      "baseline": str(baseline) if baseline else None})


def main(quick: bool, baseline: Path | None, repeat: int | None = None) -> None:
    from playwright.sync_api import sync_playwright

    repeat = repeat or (3 if quick else 5)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    url = f"sqlite:///{tmp / 'ui.db'}"
    t0 = time.perf_counter()
    sweep = populate_many(url, 1000, steps=20, keys=("loss", "acc", "lr"))
    long_ids = populate_long(url, 20 if quick else 100, 10_000)
    print(f"databases written in {time.perf_counter() - t0:.1f} s")
    envs = {"after": code_env(None)}
    if baseline is not None:
        envs["before"] = code_env(baseline)
    load = [os.getloadavg()[0]]
    start = start_to_200(url, repeat, envs)
    servers = {name: serve(url, env) for name, env in envs.items()}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            pages = pages_interleaved(browser, {n: s[1] for n, s in servers.items()},
                                      sweep[-1], long_ids, repeat)
            load.append(os.getloadavg()[0])
            live_s = live(browser, servers["after"][1], url, repeat * 2)
            browser.close()
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)  # ~110 MB of SQLite
    load.append(os.getloadavg()[0])
    size, dists = install_size()
    after = pages["after"]

    def before(value: dict | float, fmt: str) -> dict:
        return {"before": fmt.format(value)} if baseline is not None else {}

    rows = [
        {"measure": "`ato ui` start -> first HTTP 200", "value": f"{start['after']:.3f} s",
         "target": "< 0.5 s", "ok": start["after"] < 0.5,
         **before(start.get("before"), "{:.3f} s")},
        {"measure": "runs page, 1,000 runs x 3 metrics, all rows reachable",
         "value": f"{after['page']:.3f} s", "target": "< 1 s", "ok": after["page"] < 1,
         **before(pages.get("before", {}).get("page"), "{:.3f} s")},
        {"measure": "runs page, first load of the server (nothing cached)",
         "value": f"{after['page_cold']:.3f} s", "target": "< 1 s", "ok": after["page_cold"] < 1,
         **before(pages.get("before", {}).get("page_cold"), "{:.3f} s")},
        {"measure": f"one chart, {len(long_ids)} runs x 10,000 steps drawn ({after['badge']})",
         "value": f"{after['chart']:.3f} s", "target": "< 1 s", "ok": after["chart"] < 1,
         **before(pages.get("before", {}).get("chart"), "{:.3f} s")},
        {"measure": "new point visible after flush", "value": f"{live_s:.3f} s",
         "target": "< 1 s", "ok": live_s < 1},
        {"measure": "bytes downloaded for the runs page (1,000 runs)",
         "value": f"{after['bytes'] / 1024:.0f} KB", "target": "< 200 KB",
         "ok": after["bytes"] < 200 * 1024,
         **before(pages.get("before", {}).get("bytes", 0) / 1024, "{:.0f} KB")},
        {"measure": f"added install size ({', '.join(dists)} + ato-ui)",
         "value": f"{size / 1e6:.2f} MB", "target": "< 10 MB", "ok": size < 10e6},
    ]
    if baseline is not None:
        for row in rows:
            if "before" in row:
                print(f"  before: {row['measure']}: {row['before']}")
    write_results("ui", rows, {"quick": quick, "chromium": "/usr/bin/chromium",
                               "load_average_1min": [round(x, 2) for x in load],
                               "baseline": str(baseline) if baseline else None})


def parse_args(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        description="Dashboard performance in real Chromium (issue #10's targets; results: "
                    "benchmarks/results/ui.json).")
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats and a chart of 20 runs instead of 5 and 100")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="a checkout of an earlier revision whose ato ui is measured "
                             "in turns with this one (e.g. git worktree add DIR REV)")
    parser.add_argument("--chart-only", action="store_true",
                        help="only the chart of 100 runs x 10,000 steps "
                             "(results: benchmarks/results/ui-chart.json)")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="measurements per code version (default 5, --quick 3)")
    args = parser.parse_args(argv)
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
        if not args.baseline.is_dir():
            parser.error(f"--baseline {args.baseline}: no such checkout")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


if __name__ == "__main__":
    options = parse_args()
    if options.chart_only:
        chart_only(options.quick, options.baseline, options.repeat or (3 if options.quick else 5))
    else:
        main(options.quick, options.baseline, options.repeat)
