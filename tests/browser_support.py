"""Playwright helpers for the explorer in a real browser, shared by ``tests/test_browser.py`` and
``benchmarks/browser_responsiveness.py`` (which puts ``tests/`` on ``sys.path``). Not a test module.

Chromium is Debian's ``chromium`` (``apt-get install -y chromium``; ``$CHROMIUM`` names another), never
Playwright's own download. Playwright is imported by the caller. The selectors find the explorer by the CSS
class the app gives it (:data:`densenet_interp.app.serve.EXPLORER_CLASS`).
"""

from __future__ import annotations

import os
import shutil

from densenet_interp.app.serve import EXPLORER_CLASS

CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
)  # fmt: skip
PICTURE = f".{EXPLORER_CLASS} img.widget-image"
LAYER_HANDLE = f".{EXPLORER_CLASS} .widget-hslider .noUi-handle"  # the layer slider comes first
LAYER_READOUT = f".{EXPLORER_CLASS} .widget-hslider .widget-readout"


def dropdown(label: str) -> str:
    """CSS selector (Playwright's dialect) of the explorer's ``<select>`` described as ``label``."""
    return f'.{EXPLORER_CLASS} .widget-dropdown:has(> label:text-is("{label}")) select'


def chromium_path() -> str:
    """The system Chromium that Playwright drives (Playwright's own browser download is never used)."""
    found = shutil.which(os.environ.get("CHROMIUM") or "chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError(
            f"no Chromium ({os.environ.get('CHROMIUM') or 'chromium'}) for the browser; "
            "install it: apt-get install -y chromium"
        )
    return found


def launch_chromium(playwright):
    """Headless Chromium with the network features off (the machine is offline; localhost only)."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))


def wait_for_explorer(page, timeout: float = 90.0) -> None:
    """Wait until the explorer's picture is drawn (the kernel has started and rendered the first view)."""
    page.wait_for_function(
        "sel => { const img = document.querySelector(sel); "
        "return img && img.getAttribute('src') && img.complete && img.naturalWidth > 0; }",
        arg=PICTURE,
        timeout=timeout * 1000,
    )


def picture_bytes(page) -> bytes:
    """The PNG the explorer shows now, as the browser holds it (read from the image's blob URL)."""
    data = page.evaluate(
        """async sel => {
            const buffer = await (await fetch(document.querySelector(sel).src)).arrayBuffer();
            return Array.from(new Uint8Array(buffer));
        }""",
        PICTURE,
    )
    return bytes(data)


_ARM_TIMER = """sel => {
    const img = document.querySelector(sel);
    const t = {armed: performance.now(), pressed: null, src_set: null, drawn: null, src: img.src};
    window.__redraw = t;
    document.addEventListener('keydown', () => { t.pressed = performance.now(); }, {capture: true, once: true});
    const observer = new MutationObserver(() => {
        if (img.src === t.src) return;
        t.src_set = performance.now();
        observer.disconnect();
        img.addEventListener('load', () => requestAnimationFrame(() => { t.drawn = performance.now(); }),
                             {once: true});
    });
    observer.observe(img, {attributes: true, attributeFilter: ['src']});
}"""


def redraw_after(page, action, timeout: float = 30.0) -> dict:
    """Run ``action()`` (a key press, a selection) and wait until the explorer has drawn a new picture.

    Returns in-page times in ms from the action (the key press where there is one) to the new image URL
    being set (``ms_to_src``) and to the first frame after the new image loaded (``ms_to_drawn``).
    TimeoutError (Playwright's) if no new picture comes.
    """
    page.evaluate(_ARM_TIMER, PICTURE)
    action()
    page.wait_for_function("() => window.__redraw.drawn !== null", timeout=timeout * 1000)
    t = page.evaluate("() => window.__redraw")
    start = t["pressed"] if t["pressed"] is not None else t["armed"]
    return {"ms_to_src": t["src_set"] - start, "ms_to_drawn": t["drawn"] - start}


def time_layer_moves(page, moves: int = 20, timeout: float = 30.0) -> list[dict]:
    """Move the layer slider ``moves`` times by keyboard, one layer a press, timing each redraw in-page.

    Moves right, turning back at the last layer. Each entry is :func:`redraw_after`'s.
    """
    handle = page.locator(LAYER_HANDLE).first
    handle.focus()
    timings = []
    for _ in range(moves):
        if handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax"):
            redraw_after(page, lambda: page.keyboard.press("Home"), timeout)  # back to the first layer
        timings.append(redraw_after(page, lambda: page.keyboard.press("ArrowRight"), timeout))
    return timings
