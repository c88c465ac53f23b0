"""Does the input pipeline starve the model? Epoch time through it / epoch time on in-memory tensors.

Both epochs train the same compiled model (the profile's, from ``models.build_model``) on the same images:

* **pipeline**: ``pipeline.make_dataset(..., training=True)``: gather from the cached uint8 arrays, flip and
  rotate each batch, prefetch (what ``training.train_model_set`` feeds to ``fit``);
* **in memory**: ``model.fit(x, y, batch_size=...)`` on float32 ``(N, S, S, 3)`` tensors already in memory,
  no augmentation.

The budget is ``pipeline / in_memory <= 1.1``. The machine is shared (other processes only ever add time), so
the two are interleaved for several rounds after one warm-up epoch each (tracing) and the budget is checked
on the ratio of the fastest epochs (``ratio``, the least disturbed estimate, as ``timeit`` advises); the ratio
of the medians and every epoch time are reported beside it, and so is the ratio of this process's CPU time
(``cpu_ratio_of_medians``): the pipeline's whole extra work, which bounds the wall-time ratio on saturated
cores and is not disturbed by other processes. Images are random pixels: their content does not
change the cost of either path.

    python benchmarks/pipeline_ratio.py [--profile mini] [--images 512] [--rounds 5]

Writes ``results/<profile>/benchmarks/pipeline_ratio.json`` (atomically) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from densenet_interp.data import pipeline  # noqa: E402
from densenet_interp.data.images import to_model_input  # noqa: E402
from densenet_interp.models import densenet as models  # noqa: E402
from densenet_interp.paths import Layout, write_text_atomic  # noqa: E402
from densenet_interp.profiles import get_profile  # noqa: E402

BUDGET = 1.1


def _timed(fit) -> tuple[float, float]:
    """``(wall seconds, CPU seconds of this process)`` of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fit()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(profile_name: str, n_images: int, rounds: int, seed: int = 0) -> dict:
    """Time ``rounds`` interleaved epochs of each path after one warm-up epoch each; return the report."""
    profile = get_profile(profile_name)
    size, batch = profile.image_size, profile.batch_size
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n_images, size, size), dtype=np.uint8)
    labels = rng.integers(0, 2, n_images).astype(np.float32)
    pixels = images  # as training does: batches gathered from the NumPy array in place
    x_memory = tf.constant(to_model_input(images))
    y_memory = tf.constant(labels.reshape(-1, 1))

    model = models.build_model(profile, pretrained=False, seed=seed)
    model.compile(
        optimizer=keras.optimizers.Adam(profile.learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        jit_compile=False,
    )

    def fit_pipeline(epoch: int) -> None:
        dataset = pipeline.make_dataset(
            pixels,
            labels,
            batch_size=batch,
            training=True,
            seed=seed,
            rotation_degrees=profile.rotation_degrees,
            epoch=epoch,
        )
        model.fit(dataset, epochs=1, shuffle=False, verbose=0)

    def fit_memory() -> None:
        model.fit(x_memory, y_memory, batch_size=batch, epochs=1, shuffle=True, verbose=0)

    warmup = {"pipeline": _timed(lambda: fit_pipeline(0))[0], "in_memory": _timed(fit_memory)[0]}
    times, cpu = {"pipeline": [], "in_memory": []}, {"pipeline": [], "in_memory": []}
    for round_number in range(rounds):
        order = ("pipeline", "in_memory") if round_number % 2 == 0 else ("in_memory", "pipeline")
        for path in order:
            run = (lambda e=round_number + 1: fit_pipeline(e)) if path == "pipeline" else fit_memory
            wall, used = _timed(run)
            times[path].append(wall)
            cpu[path].append(used)
    cpu_medians = {path: statistics.median(values) for path, values in cpu.items()}
    medians = {path: statistics.median(values) for path, values in times.items()}
    fastest = {path: min(values) for path, values in times.items()}
    ratio = fastest["pipeline"] / fastest["in_memory"]
    return {
        "profile": profile.name,
        "model": model.name,
        "parameters": int(model.count_params()),
        "image_size": size,
        "batch_size": batch,
        "images": n_images,
        "rounds": rounds,
        "warmup_seconds": {k: round(v, 3) for k, v in warmup.items()},
        "epoch_seconds": {k: [round(v, 3) for v in values] for k, values in times.items()},
        "fastest_epoch_seconds": {k: round(v, 3) for k, v in fastest.items()},
        "median_epoch_seconds": {k: round(v, 3) for k, v in medians.items()},
        "images_per_second": {k: round(n_images / v, 1) for k, v in fastest.items()},
        "images_per_second_median": {k: round(n_images / v, 1) for k, v in medians.items()},
        "ratio": round(ratio, 4),
        "ratio_of_medians": round(medians["pipeline"] / medians["in_memory"], 4),
        "cpu_seconds": {k: [round(v, 3) for v in values] for k, values in cpu.items()},
        "cpu_ratio_of_medians": round(cpu_medians["pipeline"] / cpu_medians["in_memory"], 4),
        "budget": BUDGET,
        "within_budget": ratio <= BUDGET,
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="mini", help="profile whose model, image size and batch to use")
    parser.add_argument("--images", type=int, default=512, help="images per epoch (default 512)")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per path (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.images < 1 or args.rounds < 1:
        parser.error(f"--images and --rounds must be positive, got {args.images} and {args.rounds}")
    keras.utils.set_random_seed(args.seed)
    report = measure(args.profile, args.images, args.rounds, args.seed)
    out = Layout.for_profile(report["profile"]).results / "benchmarks" / "pipeline_ratio.json"
    text = json.dumps(report, indent=2)
    write_text_atomic(out, text + "\n")
    print(text)
    print(f"wrote {out}")
    return 0 if report["within_budget"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
