"""What bit-identical training costs, and what it takes: the same short training under several runtime settings.

Each setting trains the profile's ``wrist_random`` model set (random initialisation: no stand-in needed) for a
few epochs on the profile's phantom MURA, in a process of its own, as ``make`` runs a training:

* ``fast``: the old default: no op determinism, oneDNN free to use the processor's best instruction set;
* ``deterministic``: op determinism, oneDNN held to AVX2 (the project's default), and ``deterministic-rerun``,
  the same again, to check that a rerun gives the same bytes;
* ``deterministic-1-thread``: the same with ``TF_NUM_INTRAOP_THREADS=1``: does the thread count change the bits?
* ``deterministic-native-isa``: op determinism, oneDNN free (AVX-512 here): does the instruction set change them?
* ``deterministic-onednn-off``: op determinism, oneDNN off (Eigen kernels), for the record.
* ``deterministic-xla`` and ``deterministic-xla-rerun``: the project's default plus XLA (``jit_compile=True``):
  is it faster on the CPU, and does it stay bit-identical?

Reported per setting: seconds per epoch (the epochs after the first, which includes tracing), the ratio to
``fast``, and a SHA-256 of the final weights (every variable's bytes in model order): equal digests mean
bit-identical weights.

    python benchmarks/determinism.py [--profile mini] [--epochs 3] [--settings fast,deterministic,...]

Needs the profile's phantom (``make data``). Writes ``results/<profile>/benchmarks/determinism.json``
(atomically) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from densenet_interp.paths import Layout, write_text_atomic  # noqa: E402

SETTINGS = {
    "fast": {"DETERMINISTIC": "0", "ONEDNN_MAX_CPU_ISA": "ALL"},
    "deterministic": {"DETERMINISTIC": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "deterministic-rerun": {"DETERMINISTIC": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "deterministic-1-thread": {
        "DETERMINISTIC": "1",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "TF_NUM_INTRAOP_THREADS": "1",
    },
    "deterministic-native-isa": {"DETERMINISTIC": "1", "ONEDNN_MAX_CPU_ISA": "ALL"},
    "deterministic-onednn-off": {"DETERMINISTIC": "1", "TF_ENABLE_ONEDNN_OPTS": "0"},
    "deterministic-xla": {"DETERMINISTIC": "1", "ONEDNN_MAX_CPU_ISA": "AVX2", "XLA": "1"},
    "deterministic-xla-rerun": {"DETERMINISTIC": "1", "ONEDNN_MAX_CPU_ISA": "AVX2", "XLA": "1"},
}

SCRIPT = textwrap.dedent(
    """
    import dataclasses, hashlib, json, sys
    import keras, numpy as np, pandas as pd
    from densenet_interp.models import training
    from densenet_interp.models import densenet
    from densenet_interp.profiles import get_profile

    profile_name, epochs, mura_dir, out, cache = sys.argv[1:6]
    profile = dataclasses.replace(get_profile(profile_name), epochs=int(epochs))
    card = training.train_model_set(profile, "wrist_random", mura_dir, out, cache_dir=cache, log=lambda _: None)
    model = densenet.build_model(profile, pretrained=False)
    model.load_weights(f"{out}/checkpoints/epoch_{int(epochs):03d}.weights.h5")
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    history = pd.read_csv(f"{out}/history.csv")
    print(json.dumps({"epoch_seconds": history["seconds"].tolist(), "weights_sha256": digest.hexdigest(),
                      "val_accuracy": float(history["val_accuracy"].iloc[-1]), "execution": card["execution"]}))
    """
)


def run_setting(profile: str, epochs: int, env: dict, mura_dir: Path, cache: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        environment = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT / "lib")} | env
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT,
                profile,
                str(epochs),
                str(mura_dir),
                str(Path(tmp) / "run"),
                str(cache),
            ],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"setting {env} failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def _same(digests: dict, a: str, b: str) -> bool | None:
    return digests[a] == digests[b] if a in digests and b in digests else None


def _differ(digests: dict, a: str, b: str) -> bool | None:
    same = _same(digests, a, b)
    return None if same is None else not same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--settings", default=",".join(SETTINGS), help=f"comma-separated, of {list(SETTINGS)}"
    )
    args = parser.parse_args(argv)
    layout = Layout.for_profile(args.profile)
    mura_dir = layout.phantom_dir / "MURA-v1.1"
    if not (mura_dir / ".complete").is_file():
        raise SystemExit(f"{mura_dir}: no phantom dataset; run `make data PROFILE={args.profile}` first")
    results = {}
    for name in args.settings.split(","):
        measured = run_setting(args.profile, args.epochs, SETTINGS[name], mura_dir, layout.cache_dir)
        later = measured["epoch_seconds"][1:] or measured["epoch_seconds"]
        # the fastest epoch after the first (tracing): the least disturbed estimate on a shared machine
        measured["seconds_per_epoch"] = min(later)
        results[name] = {"environment": SETTINGS[name], **measured}
        print(
            f"{name}: {measured['seconds_per_epoch']:.1f} s/epoch, weights {measured['weights_sha256'][:16]}"
        )
    fast = results.get("fast", {}).get("seconds_per_epoch")
    for measured in results.values():
        measured["ratio_to_fast"] = round(measured["seconds_per_epoch"] / fast, 3) if fast else None
    digests = {name: r["weights_sha256"] for name, r in results.items()}
    report = {
        "what": "seconds per epoch and final-weights digest of the same training under runtime settings",
        "profile": args.profile,
        "model_set": "wrist_random",
        "epochs": args.epochs,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": results,
        "rerun_identical": _same(digests, "deterministic", "deterministic-rerun"),
        "thread_count_changes_bits": _differ(digests, "deterministic", "deterministic-1-thread"),
        "instruction_set_changes_bits": _differ(digests, "deterministic", "deterministic-native-isa"),
        "xla_rerun_identical": _same(digests, "deterministic-xla", "deterministic-xla-rerun"),
        "xla_changes_bits": _differ(digests, "deterministic", "deterministic-xla"),
    }
    out = layout.results / "benchmarks" / "determinism.json"
    write_text_atomic(out, json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "settings"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
