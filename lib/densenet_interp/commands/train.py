"""``densenet-interp train MODEL_SET [--profile P] [--mura-dir DIR] [--out DIR] [--seed K] [--verify]``: one line
per epoch."""

from __future__ import annotations

import argparse
import logging

from ..profiles import MODEL_SETS, PROFILES


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train one of the paper's four model sets (resumes if interrupted)",
        description="Train a model set with the profile's recipe (the paper's schedule, augmentation and epoch "
        "selection); an interrupted run resumes from its last finished epoch. Environment: STRATEGY=mirrored "
        "(several GPUs of this machine) or STRATEGY=multiworker with TF_CONFIG (the same command on every "
        "worker of a cluster; the chief writes the run; see the README's 'Several machines'), MIXED_PRECISION=1, "
        "XLA=1, DETERMINISTIC=0.",
    )
    p.add_argument(
        "model_set",
        choices=[*MODEL_SETS, "all"],
        help="which of the paper's four model sets, or all four in turn",
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: $PROFILE or mini")
    p.add_argument("--mura-dir", help="MURA-layout folder (default: the profile's phantom dataset)")
    p.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="training seed (initial weights, data order, augmentation); default 0, the main run. Seed K > 0 "
        "goes to results/<profile>/seeds/seedK/models/<model_set>/ unless --out is given",
    )
    p.add_argument("--out", help="model folder (default: results/<profile>/models/<model_set>/)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="on a finished run, check that model.keras loads; if it is truncated or corrupt, say so and rebuild "
        "it from the run's checkpoints (make does this before evaluation)",
    )
    return p


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import UserFacingError
    from ..models.training import train_model_set
    from ..paths import Layout, RunFiles
    from ..profiles import get_model_set, get_profile

    profile = get_profile(args.profile)
    layout = Layout.for_profile(profile.name)
    mura_dir = Path(args.mura_dir) if args.mura_dir else layout.phantom_dir
    if args.model_set == "all" and args.out:
        raise UserFacingError("--out names one model's folder; with 'all' each set goes to its own folder")
    logger = logging.getLogger(__name__)
    # --verify is quiet unless a model is damaged: that line is a warning, and so are the rebuild's epochs
    log = logger.warning if args.verify else logger.info
    for name in MODEL_SETS if args.model_set == "all" else [args.model_set]:
        model_set = get_model_set(name)
        out = Path(args.out) if args.out else layout.seed(args.seed).model_dir(model_set.name)
        if RunFiles(out).finished() and not args.verify:
            print(f"{model_set.name}: already trained ({RunFiles(out).model}); delete the folder to retrain")
        train_model_set(profile, model_set, mura_dir, out, seed=args.seed, log=log, verify=args.verify)
    return 0
