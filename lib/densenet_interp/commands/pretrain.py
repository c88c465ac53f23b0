"""``densenet-interp pretrain [--profile P] [--out FILE]``: the stand-in pre-training of a profile's backbone."""

from __future__ import annotations

import argparse

from ..profiles import PROFILES


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "pretrain",
        help="pre-train the backbone on the offline stand-in source task (stands in for ImageNet)",
        description="Pre-train the profile's backbone on the stand-in source task (synthetic shapes and "
        "textures: unrelated images, as ImageNet is to radiographs) and write its weights. Profiles that "
        "use ImageNet weights need no pre-training.",
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: $PROFILE or mini")
    p.add_argument(
        "--out", help="weights file to write (default: results/<profile>/models/standin_pretrain/)"
    )
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..models.standin import pretrain
    from ..paths import Layout
    from ..profiles import get_profile

    profile = get_profile(args.profile)
    if profile.pretraining != "standin":
        print(
            f"profile '{profile.name}' is initialised with ImageNet weights (Keras download, or the local file "
            "named by $DENSENET_WEIGHTS); no stand-in pre-training is needed"
        )
        return 0
    out = Path(args.out) if args.out else Layout.for_profile(profile.name).standin_weights
    pretrain(profile, out, seed=0)
    return 0
