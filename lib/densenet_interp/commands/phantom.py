"""``densenet-interp phantom OUT_DIR``: generate the offline phantom MURA and print a one-line summary."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "phantom",
        help="generate the offline phantom MURA dataset (synthetic radiographs in MURA's exact layout)",
        description="Write a synthetic dataset in the MURA-v1.1 layout and CSV format, with ground-truth "
        "annotations (lesion, text legend and frame masks). Study counts follow the real Table 2 x SCALE.",
    )
    p.add_argument("out_dir", help="folder to create; MURA-v1.1/ is written inside it")
    p.add_argument("--scale", type=float, default=0.1, help="fraction of the real study counts (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    p.add_argument("--long-side", type=int, default=512, help="long side of the images in pixels (<= 512)")
    p.add_argument(
        "--legend-correlation",
        type=float,
        default=None,
        help="how strongly text legends correlate with the label, 0 (none) to 1 (always); default: mild",
    )
    p.add_argument("--workers", type=int, default=None, help="processes to use (default: all cores)")
    return p


def run(args: argparse.Namespace) -> int:
    import json
    import time

    from ..phantom.dataset import MANIFEST_FILE, dataset_size_bytes, generate_dataset

    start = time.perf_counter()
    root = generate_dataset(
        args.out_dir,
        scale=args.scale,
        seed=args.seed,
        long_side=args.long_side,
        legend_correlation=args.legend_correlation,
        workers=args.workers,
    )
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    megabytes = dataset_size_bytes(root) / 1e6
    print(
        f"phantom: wrote {manifest['studies']} studies, {manifest['images']} images to {root} "
        f"in {time.perf_counter() - start:.1f} s ({megabytes:.1f} MB)"
    )
    return 0
