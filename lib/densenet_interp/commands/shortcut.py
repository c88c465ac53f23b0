"""``densenet-interp shortcut [--profile P]``: the text-legend shortcut experiment (beyond the paper).

``wrist_pretrained`` is trained twice on phantom variants that differ only in how strongly the text legend
correlates with the label, then both models are evaluated on both validation sets; see
:mod:`densenet_interp.experiments.shortcut`. Writes ``results/<profile>/tables/shortcut.{csv,md}`` and
``figures/shortcut.png``.
"""

from __future__ import annotations

import argparse

from ..profiles import PROFILES


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "shortcut",
        help="the text-legend shortcut experiment on the phantom (beyond the paper)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: $PROFILE or mini")
    p.add_argument("--results-dir", default=None, help="default: results/<profile>")
    p.add_argument("--data-dir", default=None, help="default: data/<profile>; datasets go to <it>/shortcut")
    p.add_argument("--standin-weights", default=None, help="default: the profile's stand-in backbone")
    p.add_argument(
        "--seed", type=int, default=0, help="training seed of both variants (make seeds: 1, 2, ...)"
    )
    p.add_argument("--data-seed", type=int, default=0, help="seed of the two phantom variants (default 0)")
    p.add_argument("--n-boot", type=int, default=1000, help="patient bootstrap resamples")
    return p


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ..errors import UserFacingError
    from ..experiments.shortcut import findings, run_shortcut_experiment
    from ..paths import Layout
    from ..profiles import get_profile

    profile = get_profile(args.profile)
    if not profile.phantom:
        raise UserFacingError(
            f"profile {profile.name!r} reads real MURA; the shortcut experiment needs the phantom (tiny or mini)"
        )
    layout = Layout.for_profile(profile.name)
    results_dir = Path(args.results_dir) if args.results_dir else layout.results
    data_dir = Path(args.data_dir) if args.data_dir else layout.data
    # a stand-in beside --results-dir when one is given; else the weights policy decides (the profile's own)
    standin = args.standin_weights or (Layout(results_dir).standin_weights if args.results_dir else None)
    started = time.perf_counter()
    summary = run_shortcut_experiment(
        profile,
        data_dir / "shortcut",
        results_dir,
        standin,
        args.seed,
        n_boot=args.n_boot,
        data_seed=args.data_seed,
    )
    print("\n".join(findings(summary)))
    print(
        f"shortcut experiment ({profile.name}): {time.perf_counter() - started:.0f} s; wrote "
        f"{results_dir / 'tables' / 'shortcut.csv'}"
    )
    return 0
