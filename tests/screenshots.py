"""``make screenshots``: the explorer app of a profile (the models ``make reproduce`` trained) in Chromium, at a
phone's width and a wide window, saved as ``results/screenshots/explorer_{narrow,wide}.png`` (the README's
pictures). Not a test module; ``tests/test_browser.py`` checks the same page on models built for the test.

Usage: ``python tests/screenshots.py [--profile mini] [--out results/screenshots]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_support import launch_chromium, wait_for_explorer  # noqa: E402
from densenet_interp.app import serve as app  # noqa: E402
from densenet_interp.paths import PROJECT_ROOT  # noqa: E402

WINDOWS = {"narrow": (390, 1650), "wide": (1500, 1150)}  # CSS px; tall enough for the whole explorer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile", default=os.environ.get("PROFILE") or "mini", help="whose models (default mini)"
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "screenshots", help="folder")
    args = parser.parse_args(argv)
    settings = app.resolve_settings(args.profile, "", None)
    if not settings.model_files():
        print(f"screenshots: no trained models in {settings.results}; run make reproduce PROFILE={args.profile}",
              file=sys.stderr)  # fmt: skip
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        server = app.start_voila(
            env={"DENSENET_INTERP_PROFILE": args.profile}, log=Path(scratch) / "voila.log"
        )
        with server, sync_playwright() as playwright:
            server.wait_ready(timeout=120)
            browser = launch_chromium(playwright)
            try:
                for name, (width, height) in WINDOWS.items():
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(server.url)
                    wait_for_explorer(page, timeout=180)
                    target = args.out / f"explorer_{name}.png"
                    partial = target.with_name(f".{target.name}.partial.png")
                    page.screenshot(path=partial, full_page=True)
                    os.replace(partial, target)
                    print(f"wrote {target} ({width} px wide)")
                    page.close()
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
