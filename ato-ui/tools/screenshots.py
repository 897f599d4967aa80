"""Screenshots of the dashboard for docs/img/, taken from the demo database.

    python ato-ui/tools/screenshots.py sqlite:///demo.db docs/img

Needs Chromium at /usr/bin/chromium and the Python package playwright (never
`playwright install`).  Each page is captured once its explicit ready marker is set.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def serve(url: str) -> str:
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


def main(url: str, out: str) -> None:
    from playwright.sync_api import sync_playwright

    from ato.ui.data import Store

    store = Store(url)
    runs = store.runs()["runs"]
    ids = [r["id"] for r in runs]
    studies = store.studies()
    final = ids[-1]
    pages = {
        "ui-runs": "#/runs?pc=1",
        "ui-charts": f"#/charts?runs={','.join(map(str, ids[-8:]))}&smooth=0.3",
        "ui-run": f"#/run/{final}",
        # a weak early trial against the re-evaluated winner: config, structure and metric
        # differences all show
        "ui-compare": f"#/compare?runs={ids[0]},{ids[-2]}",
    }
    if studies:
        pages["ui-search"] = f"#/search/{studies[0]['study']}"
    from ato.ui.registry import RegistryView

    models = [a for a in RegistryView(store.finder).assets("model")["assets"]]
    if models:  # the models page: versions, lineage of the latest, alias history
        pages["ui-models"] = (f"#/models/model/{quote(models[0]['name'], safe='')}"
                              f"?project={quote(models[0]['project'], safe='')}")
    base = serve(url)
    Path(out).mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 820})
        for name, hash_ in pages.items():
            page.goto(base + hash_)
            page.wait_for_selector("#view[data-ready='1']", state="attached")
            if "charts" in hash_ or "compare" in hash_ or "run/" in hash_:
                page.wait_for_selector("[data-testid='chart-card'][data-drawn]")
            page.wait_for_timeout(200)
            # the run page whole: facts, config, metrics, Inputs/Outputs and its charts
            page.screenshot(path=str(Path(out) / f"{name}.png"), full_page=name == "ui-run")
            print(f"{out}/{name}.png")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///demo.db",
         sys.argv[2] if len(sys.argv) > 2 else "docs/img")
