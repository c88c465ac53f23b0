"""``densenet-interp cases OUT_DIR``: write ``<name>.png`` and ``<name>.json`` for every named phantom case."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "cases",
        help="render the paper's named cases (Figures 1 and 4-11) as phantom radiographs with masks",
        description="Render every named case of the phantom (the radiographs the paper's Figures 1 and 4-11 "
        "describe) to OUT_DIR/<name>.png with its ground-truth annotation OUT_DIR/<name>.json.",
    )
    p.add_argument("out_dir", help="folder to write the case PNGs and their annotation JSON into")
    p.add_argument("--long-side", type=int, default=512, help="long side of the images in pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed of the rendering")
    return p


def run(args: argparse.Namespace) -> int:
    import time

    from ..phantom.cases import write_cases

    start = time.perf_counter()
    written = write_cases(args.out_dir, long_side=args.long_side, seed=args.seed)
    print(f"cases: wrote {len(written)} cases to {args.out_dir} in {time.perf_counter() - start:.1f} s")
    return 0
