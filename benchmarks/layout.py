"""Batch layout on the CPU: a training step of a DenseNet with channels last (NHWC, what the project uses) and
channels first (NCHW), same model, same batch.

The project's models are channels-last (``models/densenet.py``); this measures whether channels-first would
train faster here before anyone rewrites them. A DenseNet-BC of the mini profile's shape (dense blocks of 2, 4,
6 and 4 layers, growth 12; random weights, one output) at 128 px and batch 16 is built in either layout
(``keras.applications.DenseNet121`` refuses channels-first). Each layout runs in its own process (the format is process-wide), with the
Makefile's thread settings and op determinism. Writes ``results/mini/benchmarks/layout.json``.

Usage: ``python benchmarks/layout.py [--steps 12] [--size 128] [--batch 16]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

STEP = """
import json, sys, time
import numpy as np
import keras
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
layout, size, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
keras.config.set_image_data_format(layout)
shape = (3, size, size) if layout == "channels_first" else (size, size, 3)
keras.utils.set_random_seed(0)
axis = 1 if layout == "channels_first" else -1
L = keras.layers


def conv_block(x, growth):  # BN-ReLU-Conv1x1 (4k) - BN-ReLU-Conv3x3 (k), concatenated: DenseNet-BC
    y = L.Conv2D(4 * growth, 1, use_bias=False)(L.ReLU()(L.BatchNormalization(axis=axis)(x)))
    y = L.Conv2D(growth, 3, padding="same", use_bias=False)(L.ReLU()(L.BatchNormalization(axis=axis)(y)))
    return L.Concatenate(axis=axis)([x, y])


inputs = keras.Input(shape)
x = L.Conv2D(24, 3, strides=2, padding="same", use_bias=False)(inputs)
for i, layers in enumerate((2, 4, 6, 4)):  # the mini profile's compact DenseNet-BC, growth 12
    for _ in range(layers):
        x = conv_block(x, 12)
    if i < 3:
        channels = x.shape[axis] // 2
        x = L.Conv2D(channels, 1, use_bias=False)(L.ReLU()(L.BatchNormalization(axis=axis)(x)))
        x = L.AveragePooling2D(2)(x)
x = L.GlobalAveragePooling2D()(L.ReLU()(L.BatchNormalization(axis=axis)(x)))
model = keras.Model(inputs, L.Dense(1, activation="sigmoid")(x))
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
rng = np.random.default_rng(0)
x = rng.random((batch, *shape), dtype=np.float32)
y = rng.integers(0, 2, (batch, 1)).astype(np.float32)
model.train_on_batch(x, y)  # traced and warmed
times = []
for _ in range(steps):
    start = time.perf_counter()
    model.train_on_batch(x, y)
    times.append(time.perf_counter() - start)
print(json.dumps({"layout": layout, "median_s": float(np.median(times)), "times_s": times}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    env = os.environ | {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_NUM_INTRAOP_THREADS": "2",
        "TF_NUM_INTEROP_THREADS": "2",
    }
    results = {}
    for layout in ("channels_last", "channels_first"):
        run = subprocess.run(
            [sys.executable, "-c", STEP, layout, str(args.size), str(args.batch), str(args.steps)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        if run.returncode != 0 or not lines:
            results[layout] = {"error": (run.stderr.strip().splitlines() or ["no output"])[-1]}
        else:
            results[layout] = json.loads(lines[-1])
        print(f"{layout}: {results[layout].get('median_s', results[layout].get('error'))}")
    last, first = (results[k].get("median_s") for k in ("channels_last", "channels_first"))
    result = {
        "model": "DenseNet-BC, dense blocks 2-4-6-4, growth 12 (the mini profile's shape), random weights",
        "size": args.size,
        "batch": args.batch,
        "steps": args.steps,
        "threads": 2,
        "results": results,
        "channels_first_over_channels_last": (first / last) if first and last else None,
    }
    from densenet_interp.paths import Layout, write_text_atomic

    target = Layout.for_profile("mini").results / "benchmarks" / "layout.json"
    write_text_atomic(target, json.dumps(result, indent=2) + "\n")
    if first and last:
        print(
            f"median training step: channels last {last:.3f} s, channels first {first:.3f} s (x {first / last:.2f})"
        )
    print(f"written to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
