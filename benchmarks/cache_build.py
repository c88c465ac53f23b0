"""Decode-cache build rate on radiographs of MURA's size: images per second, per core and on all cores.

The decode cache (``pipeline.build_cache``) reads every PNG once, scales it to the model's input and stores it;
on real MURA that is 40,005 images of about 512 px on the long side. This script builds the cache of a phantom
MURA generated at 512 px (the same PNG sizes and bit depth as MURA's; ``--scale`` sets how many) at the paper's
320 px, once with one decode thread and once with one thread per core, into fresh folders, and reports images
per second of each, the rate per core, and the time the whole of MURA would take at the faster rate.

    python benchmarks/cache_build.py [--scale 0.02] [--long-side 512] [--size 320]

Writes ``results/paper/benchmarks/cache_build.json`` (atomically) and prints it. The phantom is generated into a
temporary folder (reused from ``--phantom DIR`` if given) and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

MURA_IMAGES = 40_005  # MURA v1.1: 36,808 training and 3,197 validation images


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.02, help="phantom scale (default 0.02: ~800 images)")
    parser.add_argument(
        "--long-side", type=int, default=512, help="PNG long side in pixels (MURA: about 512)"
    )
    parser.add_argument("--size", type=int, default=320, help="cached side in pixels (the paper: 320)")
    parser.add_argument("--phantom", default=None, help="an existing phantom MURA-v1.1 folder to use instead")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.long_side < 64 or args.size < 8:
        parser.error("--scale must be positive, --long-side at least 64, --size at least 8")

    from densenet_interp.data import mura, pipeline
    from densenet_interp.paths import Layout, write_text_atomic

    work = Path(tempfile.mkdtemp(prefix="cache-build-"))
    try:
        if args.phantom:
            root = Path(args.phantom)
        else:
            from densenet_interp.phantom import generate_dataset

            started = time.perf_counter()
            root = Path(
                generate_dataset(work / "phantom", scale=args.scale, long_side=args.long_side, seed=0)
            )
            print(f"generated the phantom in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        index = mura.read_mura(root)
        n = len(index.images)
        mean_kb = sum(os.path.getsize(p) for p in index.images["abs_path"]) / n / 1e3
        runs = {}
        for label, workers in (("one_thread", 1), ("all_cores", _cores())):
            started = time.perf_counter()
            pipeline.build_cache(index, args.size, work / f"cache-{label}", workers=workers)
            seconds = time.perf_counter() - started
            runs[label] = {
                "threads": workers,
                "seconds": round(seconds, 2),
                "images_per_second": round(n / seconds, 1),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = max(run["images_per_second"] for run in runs.values())
    report = {
        "data": f"phantom MURA (synthetic) PNGs at {args.long_side} px long side (not MURA images)",
        "images": n,
        "mean_png_kb": round(mean_kb, 1),
        "cached_size": args.size,
        "runs": runs,
        "images_per_second_per_core": round(runs["one_thread"]["images_per_second"], 1),
        "scaling_all_cores": round(
            runs["all_cores"]["images_per_second"] / runs["one_thread"]["images_per_second"], 2
        ),
        "mura_minutes_at_best_rate": round(MURA_IMAGES / best / 60, 1),
        "cpu_count": _cores(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    out = Layout.for_profile("paper").results / "benchmarks" / "cache_build.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
