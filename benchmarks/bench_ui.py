"""Dashboard performance (issue #10's targets), written to benchmarks/results/ui.json.

    python benchmarks/bench_ui.py [--quick]

Drives Debian's Chromium (/usr/bin/chromium) with Playwright against real `ato ui`
processes and an in-process uvicorn server over SQLite files in a temporary directory.
Medians of repeated runs:

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
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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


def start_to_200(url: str, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "ato.cli", "ui", url, "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
        link = re.search(r"http://\S+", proc.stdout.readline()).group(0)
        while True:
            try:
                with urllib.request.urlopen(link, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.005)
        samples.append(time.perf_counter() - t0)
        proc.terminate()
        proc.wait(10)
    return statistics.median(samples)


def serve(url: str):
    import uvicorn

    from ato.ui.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(create_app(url), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def runs_page(browser, base: str, last_id: int, repeat: int) -> tuple[float, int]:
    samples, transferred = [], 0
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        t0 = time.perf_counter()
        page.goto(base + "#/runs?project=sweep")
        page.wait_for_selector("[data-testid='runs-table'][data-ready='1']", state="attached")
        assert page.get_attribute("[data-testid='row-count']", "data-count") == "1000"
        page.eval_on_selector("[data-testid='runs-table']", "t => t.scrollTop = t.scrollHeight")
        page.wait_for_selector(f"[data-testid='row-{last_id}']")
        samples.append(time.perf_counter() - t0)
        transferred = page.evaluate(
            "() => performance.getEntriesByType('navigation').concat("
            "performance.getEntriesByType('resource')).reduce((a, e) => a + e.transferSize, 0)")
        page.close()
    return statistics.median(samples), transferred


def chart(browser, base: str, ids, repeat: int) -> tuple[float, str]:
    samples, badge = [], ""
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        t0 = time.perf_counter()
        page.goto(base + "#/charts?runs=" + ",".join(map(str, ids)))
        page.wait_for_selector("[data-testid='chart-card'][data-drawn]", state="attached",
                               timeout=60_000)
        samples.append(time.perf_counter() - t0)
        badge = page.inner_text("[data-testid='points-badge']")
        page.close()
    return statistics.median(samples), badge


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


def main(quick: bool) -> None:
    from playwright.sync_api import sync_playwright

    repeat = 3 if quick else 5
    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    url = f"sqlite:///{tmp / 'ui.db'}"
    t0 = time.perf_counter()
    sweep = populate_many(url, 1000, steps=20, keys=("loss", "acc", "lr"))
    long_ids = populate_long(url, 20 if quick else 100, 10_000)
    print(f"databases written in {time.perf_counter() - t0:.1f} s")
    start = start_to_200(url, repeat)
    base = serve(url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page_s, page_bytes = runs_page(browser, base, sweep[-1], repeat)
        chart_s, badge = chart(browser, base, long_ids, repeat)
        live_s = live(browser, base, url, repeat * 2)
        browser.close()
    size, dists = install_size()
    rows = [
        {"measure": "`ato ui` start -> first HTTP 200", "value": f"{start:.3f} s",
         "target": "< 0.5 s", "ok": start < 0.5},
        {"measure": "runs page, 1,000 runs x 3 metrics, all rows reachable",
         "value": f"{page_s:.3f} s", "target": "< 1 s", "ok": page_s < 1},
        {"measure": f"one chart, {len(long_ids)} runs x 10,000 steps drawn ({badge})",
         "value": f"{chart_s:.3f} s", "target": "< 1 s", "ok": chart_s < 1},
        {"measure": "new point visible after flush", "value": f"{live_s:.3f} s",
         "target": "< 1 s", "ok": live_s < 1},
        {"measure": "bytes downloaded for the runs page (1,000 runs)",
         "value": f"{page_bytes / 1024:.0f} KB", "target": "< 200 KB",
         "ok": page_bytes < 200 * 1024},
        {"measure": f"added install size ({', '.join(dists)} + ato-ui)",
         "value": f"{size / 1e6:.2f} MB", "target": "< 10 MB", "ok": size < 10e6},
    ]
    write_results("ui", rows, {"quick": quick, "chromium": "/usr/bin/chromium"})


if __name__ == "__main__":
    main("--quick" in sys.argv)
