"""``densenet-interp seeds evaluate|summarise``: the training-seed noise (``make seeds SEEDS=5``).

``seeds evaluate --seed K`` writes seed K's predictions (and on the phantom its localisation tables) beside its
models in ``results/<profile>/seeds/seedK/``; ``seeds summarise --seeds N`` pools seeds 0..N-1 (seed 0 is the
main run) into ``tables/table1_seeds.{csv,md}``, ``tables/claims_seeds.{csv,md}`` and their companions; see
:mod:`densenet_interp.experiments.seeds`. The trainings themselves are ``densenet-interp train SET --seed K``.
"""

from __future__ import annotations

import argparse
import logging

from ..profiles import PROFILES


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer of at least {minimum}, got {text!r}")
        return value

    return parse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "seeds",
        help="evaluate one training seed, or pool all seeds into Table 1 and the claims over seeds",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="{evaluate,summarise}")
    evaluate = actions.add_parser("evaluate", help="predictions and localisation tables of seed K's models")
    evaluate.add_argument(
        "--seed", type=_count(1), required=True, help="the seed (1, 2, ...; 0 is the main run)"
    )
    summarise = actions.add_parser("summarise", help="pool seeds 0..N-1 into the seeds tables")
    summarise.add_argument("--seeds", type=_count(1), required=True, help="how many seeds (seed 0 included)")
    summarise.add_argument("--n-boot", type=_count(1), default=1000, help="bootstrap resamples")
    for q in (evaluate, summarise):
        q.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: $PROFILE or mini")
        q.add_argument("--results-dir", default=None, help="default: results/<profile>")
        q.add_argument("--data-dir", default=None, help="default: data/<profile>")
    evaluate.add_argument("--mura-dir", default=None, help="default: the profile's phantom dataset")
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..experiments.seeds import evaluate_seed, summarise_seeds
    from ..paths import Layout
    from ..profiles import get_profile

    profile = get_profile(args.profile)
    default = Layout.for_profile(profile.name)
    layout = Layout(
        Path(args.results_dir) if args.results_dir else default.results,
        Path(args.data_dir) if args.data_dir else default.data,
    )
    if args.action == "evaluate":
        mura_dir = Path(args.mura_dir) if args.mura_dir else layout.phantom_dir
        evaluate_seed(profile, layout.seed(args.seed), mura_dir, log=logging.getLogger(__name__).info)
    else:
        summarise_seeds(profile, layout, args.seeds, n_boot=args.n_boot)
    return 0
