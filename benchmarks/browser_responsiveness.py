"""How fast does the explorer answer in a real browser? Slider move to new picture drawn (target 300 ms).

Serves ``notebooks/90_explorer.ipynb`` with Voila as ``make app`` does, on a free 127.0.0.1 port, opens it in
headless Chromium (Playwright driving Debian's ``chromium``), waits for the first picture, then moves the layer
slider ``--moves`` times by keyboard, one layer a press. Each move is timed inside the page, from the key press
to the first frame after the new image has loaded (``ms_to_drawn``; the time to the new image URL being set is
reported too). This is what the user waits for: browser event, websocket round trip, kernel redraw (see
``benchmarks/redraw_time.py`` for the kernel's part alone), PNG transfer and decoding.

Uses the trained models in ``results/<profile>/models/``; without them (no ``make reproduce`` yet) it builds
an untrained model of the profile's architecture in a temporary results folder: the time to redraw does not
depend on the weights. Writes ``results/<profile>/benchmarks/browser_responsiveness.json``.

Usage: ``python benchmarks/browser_responsiveness.py [--profile mini] [--moves 20] [--screenshot PNG]``
(``--screenshot``: the whole page after the moves, to a file you name; the README's pictures come from
``make screenshots``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from densenet_interp.app import serve as app
from densenet_interp.paths import Layout, results_root, write_text_atomic
from densenet_interp.profiles import MODEL_SETS, get_profile

# the Playwright helpers that tests/test_browser.py uses too
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_support import launch_chromium, time_layer_moves, wait_for_explorer  # noqa: E402

TARGET_MS = 300.0


def untrained_results(profile, folder: Path) -> Path:
    """``folder/<profile>/models/all_pretrained/model.keras``: the profile's architecture, untrained."""
    from densenet_interp.models.densenet import build_compact_densenet, build_densenet169

    if profile.architecture == "compact":
        model = build_compact_densenet(profile.blocks, profile.growth_rate, profile.image_size, seed=0)
    else:
        model = build_densenet169(profile.image_size)
    target = Layout(folder / profile.name, Path()).run("all_pretrained").model
    target.parent.mkdir(parents=True)
    model.save(target)
    return folder


def measure(profile, results: Path, moves: int, log: Path, screenshot: Path | None = None) -> dict:
    """Serve the app on ``results`` (a results root), open it in Chromium and time ``moves`` slider moves."""
    from playwright.sync_api import sync_playwright

    env = {"PROFILE": profile.name, "DENSENET_INTERP_RESULTS": str(results)}
    with app.start_voila(env=env, log=log) as server, sync_playwright() as playwright:
        server.wait_ready()
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            started = time.perf_counter()
            page.goto(server.url)
            wait_for_explorer(page, timeout=300)
            first_view = time.perf_counter() - started
            timings = time_layer_moves(page, moves)
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=screenshot, full_page=True)
            return {"first_view_seconds": first_view, "timings": timings, "chromium": browser.version}
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="tiny, mini (default: $PROFILE or mini) or paper")
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument(
        "--screenshot", type=Path, default=None, help="save the page as this PNG after the moves"
    )
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    app.ensure_kernel()
    layout = Layout.for_profile(profile.name)
    trained = any(layout.run(name).model.is_file() for name in MODEL_SETS)
    with tempfile.TemporaryDirectory(prefix="browser-responsiveness-") as tmp:
        results = results_root() if trained else untrained_results(profile, Path(tmp) / "results")
        run = measure(profile, results, args.moves, Path(tmp) / "voila.log", args.screenshot)
    drawn = [t["ms_to_drawn"] for t in run["timings"]]
    median = statistics.median(drawn)
    result = {
        "profile": profile.name,
        "models": "trained (results/<profile>/models)" if trained else "untrained (no trained models yet)",
        "image_size": profile.image_size,
        "moves": args.moves,
        "first_view_seconds": run["first_view_seconds"],
        "median_ms_to_drawn": median,
        "p90_ms_to_drawn": float(np.percentile(drawn, 90)),
        "max_ms_to_drawn": max(drawn),
        "median_ms_to_src": statistics.median(t["ms_to_src"] for t in run["timings"]),
        "target_ms": TARGET_MS,
        "within_target": median < TARGET_MS,
        "all_timings": run["timings"],
        "browser": f"Chromium {run['chromium']} (headless, Playwright)",
        "machine": {"cpus": os.cpu_count()},
    }
    target = layout.results / "benchmarks" / "browser_responsiveness.json"
    write_text_atomic(target, json.dumps(result, indent=2) + "\n")
    print(
        f"{profile.name} ({result['models']}): slider -> picture drawn in the browser, median {median:.0f} ms "
        f"(p90 {result['p90_ms_to_drawn']:.0f}, max {result['max_ms_to_drawn']:.0f}; target {TARGET_MS:.0f} ms) "
        f"over {args.moves} moves; first view {run['first_view_seconds']:.1f} s; written to {target}"
    )
    return result


if __name__ == "__main__":
    main()
