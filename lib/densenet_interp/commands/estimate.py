"""``densenet-interp estimate [--profile P] [--mura-dir DIR]``: how long the profile's trainings take here.

Measures this machine's training throughput for the profile's model (a few optimiser steps of its batch at its
input size; random weights and inputs, since the speed does not depend on them), counts the training images of
the paper's four model sets in the dataset, and prints the time their epochs would take. It is the basis of the
stop that ``make reproduce PROFILE=paper`` makes without ``GPU=1`` (continue with ``CPU_OK=1``): the paper's
DenseNet-169 at 320 px takes days on a laptop CPU, and nobody should learn that from an ETA after a day.
"""

from __future__ import annotations

import argparse
import time

from ..profiles import MODEL_SETS, PROFILES


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "estimate",
        help="measure training speed here and estimate how long the profile's four trainings take",
        description="Time a few training steps of the profile's model on this machine and multiply by the "
        "training images of the four model sets and the profile's epochs.",
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: $PROFILE or mini")
    p.add_argument("--mura-dir", required=True, help="the MURA-v1.1 folder whose training images are counted")
    p.add_argument("--steps", type=int, default=2, help="timed training steps after one warm-up (default 2)")
    return p


def training_images(index) -> dict[str, int]:
    """Training images of each of the paper's four model sets in a MURA index."""
    from ..data.mura import select_images

    return {name: len(select_images(index, "train", spec.body_parts)) for name, spec in MODEL_SETS.items()}


def measure_throughput(profile, steps: int = 2) -> float:
    """Images per second of training steps (forward, backward, Adam) of the profile's model here."""
    import numpy as np

    from ..models.densenet import build_model
    from ..models.runtime import RuntimeOptions
    from ..models.training import _compile

    model = build_model(profile, pretrained=False, seed=0)
    _compile(model, profile, RuntimeOptions())
    rng = np.random.default_rng(0)
    size, batch = profile.image_size, profile.batch_size
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    y = rng.integers(0, 2, (batch, 1)).astype(np.float32)
    model.train_on_batch(x, y)  # warm-up: graph tracing and memory allocation are not the steady speed
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch / (time.perf_counter() - started)


def duration(seconds: float) -> str:
    days, rest = divmod(int(round(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days} d {hours} h" if days else f"{hours} h {minutes} min" if hours else f"{minutes} min"


def run(args: argparse.Namespace) -> int:
    import os

    from ..data.mura import read_mura
    from ..errors import UserFacingError
    from ..profiles import get_profile

    if args.steps < 1:
        raise UserFacingError(f"--steps must be at least 1, got {args.steps}")
    profile = get_profile(args.profile)
    counts = training_images(read_mura(args.mura_dir))
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    rate = measure_throughput(profile, args.steps)
    passes = profile.epochs * sum(counts.values())
    where = f"{gpus} GPU(s)" if gpus else f"the CPU only ({os.cpu_count()} cores)"
    print(
        f"{profile.name}: {profile.architecture} at {profile.image_size} px, batch {profile.batch_size}, on "
        f"{where}: {rate:.2f} training images/s measured ({args.steps} steps after a warm-up)"
    )
    print(
        "training images: "
        + ", ".join(f"{name} {n:,}" for name, n in counts.items())
        + f"; x {profile.epochs} epochs = {passes:,} image passes"
    )
    print(
        f"estimated training time: {duration(passes / rate)} (training steps only; validation adds a little)"
    )
    return 0
