"""Host memory and input-pipeline throughput at MURA's full size, without MURA: a decode cache of random pixels.

The paper's largest model set, ``all_pretrained``, trains on every MURA training image: 36,808 radiographs at
320 x 320, a 3.77 GB ``uint8`` array in the decode cache, plus 3,197 validation images. This script writes a
decode cache of exactly that shape (``pipeline.cache_files`` format: the ``.npy`` and its index ``.csv``;
random pixels, whose content changes neither the memory nor the cost of a batch), then, in a fresh process per
method, loads the model set's two splits from it and runs training batches (flip and rotation, the paper's
augmentation) and validation batches through ``pipeline.make_dataset``, as ``training.train_model_set`` does:

* ``current``: ``ImageCache.arrays_for`` (plain file reads into one array) and batches gathered from that
  array in place (what the package does);
* ``tensor`` (``--compare``): the previous code, rows gathered through the memory map and copied into a
  TensorFlow constant once per run, for the before/after ratio.

Peak memory is the process's high-water resident set (``VmHWM``), reset after TensorFlow is imported and a
small dataset has run once (its thread pools and kernels belong to any training); the ratio is the rise in
peak over the training split's array in bytes. The budget is 1.3. Throughput is images per second of
augmented training batches (after ``--warmup`` batches), on however many cores this machine has: the rate
a GPU would be fed at.

    python benchmarks/host_memory.py [--train 36808] [--valid 3197] [--size 320] [--batch 8]
                                     [--batches 400] [--compare] [--dir DIR]

Writes ``results/paper/benchmarks/host_memory.json`` (atomically) and prints it. The cache (4.1 GB at the
defaults) is written to a temporary folder under ``--dir`` (default: the system's) and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

BUDGET = 1.3
MURA_TRAIN, MURA_VALID = 36_808, 3_197


def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field in bytes (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}; this benchmark needs Linux")


def _reset_peak() -> None:
    """Set the high-water mark to the current resident set (Linux: write 5 to /proc/self/clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def write_cache(folder: Path, n_train: int, n_valid: int, size: int, seed: int = 0) -> tuple[Path, Path]:
    """A decode cache of ``n_train + n_valid`` random images in the package's format; its two files."""
    from densenet_interp.data import pipeline

    array_file, index_file = pipeline.cache_files(folder, "benchmark", size)
    n = n_train + n_valid
    rng = np.random.default_rng(seed)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False}
    header["shape"] = (n, size, size)
    with open(array_file, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        for start in range(0, n, 1024):
            rows = min(1024, n - start)
            handle.write(rng.integers(0, 256, (rows, size, size), dtype=np.uint8).tobytes())
    split = ["train"] * n_train + ["valid"] * n_valid
    paths = [f"MURA-v1.1/{s}/XR_WRIST/patient{i:05d}/study1_positive/image1.png" for i, s in enumerate(split)]
    table = pd.DataFrame({"path": paths, "abs_path": paths, "bytes": 0, "mtime_ns": 0})
    table.to_csv(index_file, index=False)
    return array_file, index_file


def measure_child(
    array_file: Path, index_file: Path, method: str, batch: int, batches: int, warmup: int
) -> dict:
    """Load both splits with ``method`` and run batches; the memory and throughput report (in this process)."""
    import tensorflow as tf

    from densenet_interp.data import pipeline

    warm = np.zeros((2 * batch, 32, 32), np.uint8)
    for dataset in (
        pipeline.make_dataset(warm, np.zeros(2 * batch), batch_size=batch, training=True, seed=0),
        pipeline.make_dataset(
            tf.constant(warm), np.zeros(2 * batch), batch_size=batch, training=True, seed=0
        ),
    ):
        for _ in dataset:
            pass
    baseline = _status("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    cache = pipeline.ImageCache(array_file, index_file)
    splits = {}
    for split in ("train", "valid"):
        paths = cache.table.loc[cache.table["path"].str.contains(f"/{split}/"), "path"].tolist()
        if method == "current":
            pixels = cache.arrays_for(paths)
        else:  # the previous code: rows gathered through the memory map, copied into a TensorFlow constant
            rows = np.fromiter((cache._rows[p] for p in paths), dtype=np.int64, count=len(paths))
            with tf.device("/cpu:0"):
                pixels = tf.constant(np.ascontiguousarray(cache._array[rows]))
        splits[split] = (pixels, np.zeros(len(paths), np.float32))
    load_seconds = time.perf_counter() - started
    after_load = _status("VmRSS")
    x_train, y_train = splits["train"]
    train_bytes = int(np.prod(x_train.shape))
    valid_bytes = int(np.prod(splits["valid"][0].shape))
    train = pipeline.make_dataset(x_train, y_train, batch_size=batch, training=True, seed=0, epoch=0)
    seen, tick = 0, None
    for number, (x, _) in enumerate(train.take(warmup + batches)):
        if number == warmup:
            tick, seen = time.perf_counter(), 0
        seen += int(x.shape[0])
    train_seconds = time.perf_counter() - tick
    x_valid, y_valid = splits["valid"]
    valid = pipeline.make_dataset(x_valid, y_valid, batch_size=batch, training=False, seed=0)
    for _ in valid.take(batches):
        pass
    peak = _status("VmHWM")
    return {
        "method": method,
        "train_images": int(x_train.shape[0]),
        "valid_images": int(x_valid.shape[0]),
        "train_array_gb": round(train_bytes / 1e9, 3),
        "valid_array_gb": round(valid_bytes / 1e9, 3),
        "baseline_rss_gb": round(baseline / 1e9, 3),
        "rss_after_load_gb": round(after_load / 1e9, 3),
        "peak_rss_gb": round(peak / 1e9, 3),
        "steady_ratio": round((after_load - baseline) / train_bytes, 3),
        "peak_ratio": round((peak - baseline) / train_bytes, 3),
        "peak_ratio_to_both_splits": round((peak - baseline) / (train_bytes + valid_bytes), 3),
        "load_seconds": round(load_seconds, 1),
        "augmented_train_images_per_second": round(seen / train_seconds, 1),
        "timed_train_batches": batches,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=MURA_TRAIN, help=f"training images (MURA: {MURA_TRAIN})")
    parser.add_argument(
        "--valid", type=int, default=MURA_VALID, help=f"validation images (MURA: {MURA_VALID})"
    )
    parser.add_argument("--size", type=int, default=320, help="image side in pixels (the paper: 320)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (the paper: 8)")
    parser.add_argument("--batches", type=int, default=400, help="timed training batches (default 400)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed training batches first (default 20)")
    parser.add_argument(
        "--compare", action="store_true", help="also measure the previous code (a tensor copy)"
    )
    parser.add_argument(
        "--dir", default=None, help="where to write the temporary cache (default: system temp)"
    )
    parser.add_argument("--child", nargs=3, metavar=("ARRAY", "INDEX", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.train, args.valid, args.size, args.batch, args.batches) < 1 or args.warmup < 0:
        parser.error("--train, --valid, --size, --batch and --batches must be positive, --warmup >= 0")
    if args.child:
        array_file, index_file, method = args.child
        report = measure_child(
            Path(array_file), Path(index_file), method, args.batch, args.batches, args.warmup
        )
        print(json.dumps(report))
        return 0

    from densenet_interp.paths import Layout, write_text_atomic

    folder = Path(tempfile.mkdtemp(prefix="host-memory-", dir=args.dir))
    try:
        started = time.perf_counter()
        array_file, index_file = write_cache(folder, args.train, args.valid, args.size)
        write_seconds = time.perf_counter() - started
        runs = []
        for method in ("current", "tensor") if args.compare else ("current",):
            command = [sys.executable, __file__, "--child", str(array_file), str(index_file), method]
            command += [
                "--batch",
                str(args.batch),
                "--batches",
                str(args.batches),
                "--warmup",
                str(args.warmup),
            ]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    current = runs[0]
    report = {
        "data": "random pixels in the decode-cache format at MURA's size (not MURA images)",
        "image_size": args.size,
        "batch_size": args.batch,
        "cache_write_seconds": round(write_seconds, 1),
        "runs": runs,
        "peak_ratio": current["peak_ratio"],
        "budget": BUDGET,
        "within_budget": current["peak_ratio"] <= BUDGET,
        "augmented_train_images_per_second": current["augmented_train_images_per_second"],
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    out = Layout.for_profile("paper").results / "benchmarks" / "host_memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0 if report["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
