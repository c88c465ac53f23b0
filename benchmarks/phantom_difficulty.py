"""Where does a setting of the phantom's difficulty knobs put a DenseNet? The calibration of the defaults.

Generates a phantom MURA with the given :class:`~densenet_interp.phantom.DifficultyKnobs`, trains one model set
on it with the profile's recipe (optionally overridden: epochs, learning-rate drops, ...), predicts its
validation images and reports the image-level accuracy and Cohen's kappa (as Table 1), the accuracy on the
training images, and per abnormality kind the share of images the model calls abnormal (as
``table1_per_kind.csv``). This is how the phantom's defaults were chosen (see ``densenet_interp.phantom``):
the issue asks for a DenseNet near the paper's regime, image-level accuracy about 0.75-0.9.

    python benchmarks/phantom_difficulty.py --name defaults
    python benchmarks/phantom_difficulty.py --name old --knobs lesion_scale=1.5 hidden_view_probability=0.25 \\
        subtle_fraction=0.3 hardware_hidden_probability=0.1 --set epochs=16 lr_drop_fractions=0.25,0.5,0.75

Needs the profile's stand-in backbone (``make reproduce`` writes it) for a pre-trained model set. Works in
``--work-dir`` (default ``data/<profile>/difficulty``; a setting's data and run are reused when they exist)
and writes ``results/<profile>/benchmarks/phantom_difficulty_<name>.json`` atomically. Mini, all
extremities: about 45 s of generation and 8-9 min of training on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _value(text: str):
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"0.5,0.75"`` -> (0.5, 0.75)."""
    if "," in text:
        return tuple(_value(t) for t in text.split(",") if t)
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _pairs(items: list[str], what: str) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"{what}: expected NAME=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        out[key] = _value(text)
    return out


def measure(
    name: str, profile_name: str, model_set_name: str, knobs: dict, overrides: dict, work: Path
) -> dict:
    """Generate (or reuse) the phantom, train (or reuse) the model, evaluate; return the report."""
    import keras

    from densenet_interp.data import mura, pipeline
    from densenet_interp.evaluate import metrics as evaluation
    from densenet_interp.models import inference, training
    from densenet_interp.paths import RunFiles
    from densenet_interp.phantom import DifficultyKnobs, generate_dataset, load_annotations
    from densenet_interp.profiles import get_model_set, get_profile

    base = get_profile(profile_name)
    profile = dataclasses.replace(base, **overrides)
    model_set = get_model_set(model_set_name)
    difficulty = DifficultyKnobs(**knobs)
    data_dir = work / "data" / name
    seconds = {}
    if not (data_dir / "MURA-v1.1" / "phantom_manifest.json").is_file():
        tick = time.perf_counter()
        generate_dataset(
            data_dir, profile.phantom_scale, seed=0, long_side=profile.phantom_long_side, knobs=difficulty
        )
        seconds["generation"] = round(time.perf_counter() - tick, 1)
    _check_reusable(data_dir, work / "runs" / name, difficulty.to_dict(), profile.to_dict())
    tick = time.perf_counter()
    card = training.train_model_set(
        profile, model_set, data_dir, work / "runs" / name, cache_dir=work / "cache"
    )
    seconds["training"] = round(time.perf_counter() - tick, 1)
    index = mura.read_mura(data_dir)
    cache = pipeline.build_cache(index, profile.image_size, work / "cache")
    model = keras.models.load_model(RunFiles(work / "runs" / name).model)
    annotations = load_annotations(data_dir)
    report = {
        "name": name,
        "profile": profile_name,
        "model_set": model_set.name,
        "knobs": difficulty.to_dict(),
        "profile_overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "selected_epoch": card["selected_epoch"],
        "seconds": seconds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    for split in ("valid", "train"):
        table = inference.predictions_table(model, index, model_set, cache, split=split)
        labels, probability = table["label"].to_numpy(), table["probability"].to_numpy()
        report[f"{split}_accuracy"] = round(evaluation.accuracy(labels, probability), 4)
        if split == "valid":
            report["valid_kappa"] = round(evaluation.cohen_kappa(labels, probability), 4)
            kinds = evaluation.per_abnormality_kind({model_set.name: table}, annotations)
            report["valid_per_kind"] = kinds.drop(columns="model_set").round(4).to_dict("records")
    return report


def _check_reusable(data_dir: Path, run_dir: Path, knobs: dict, profile: dict) -> None:
    """Refuse to reuse a setting's data or run made with other knobs or another profile (same ``--name``)."""
    manifest = data_dir / "MURA-v1.1" / "phantom_manifest.json"
    if json.loads(manifest.read_text()).get("knobs") != knobs:
        raise SystemExit(f"{manifest}: generated with other knobs; use another --name or delete {data_dir}")
    from densenet_interp.paths import RunFiles

    card = RunFiles(run_dir).card
    if card.is_file() and json.loads(card.read_text()).get("profile") != json.loads(json.dumps(profile)):
        raise SystemExit(f"{card}: trained with another profile; use another --name or delete {run_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="name of this setting (folder and JSON file name)")
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--model-set", default="all_pretrained")
    parser.add_argument("--knobs", nargs="*", default=[], metavar="KNOB=VALUE", help="DifficultyKnobs fields")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="FIELD=VALUE", help="profile fields to override"
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    from densenet_interp.paths import Layout, write_text_atomic

    layout = Layout.for_profile(args.profile)
    work = args.work_dir or layout.data / "difficulty"
    report = measure(
        args.name,
        args.profile,
        args.model_set,
        _pairs(args.knobs, "--knobs"),
        _pairs(args.set, "--set"),
        work,
    )
    out = layout.results / "benchmarks" / f"phantom_difficulty_{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "valid_per_kind"}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
