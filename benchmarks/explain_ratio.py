"""What does an explanation cost? One-pass explain vs plain prediction vs the per-layer way.

Measures, on one batch of random images with a profile's model (untrained: the cost does not depend on the
weights):

(a) ``Explainer.explain`` (the engine, :mod:`densenet_interp.explain.engine`, on the paper's layer set: the five
    stages and the final maps): one forward pass of the multi-output model, CAM computed in the same traced
    function;
(b) ``model.predict_on_batch``: the prediction alone, the baseline;
(c) the per-layer way of tools such as tf-keras-vis and keract used one layer at a time: one sub-model per
    layer (the five stages and the final maps), each running its own forward pass from the input, then the
    CAM from the final maps with numpy (the probability follows from the CAM, so no seventh pass is needed).

The three are run interleaved (a, b, c, a, b, c, ...) after warm-up so that load from other processes hits all
alike; medians are reported. The project's budget is (a) <= 1.2 x (b). Writes
``results/<profile>/benchmarks/explain_ratio.json``.

Usage: ``python benchmarks/explain_ratio.py [--profile mini] [--batch 16] [--repeats 9]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import keras
import numpy as np

from densenet_interp.explain.engine import FINAL, STAGES, Explainer, explainer_for
from densenet_interp.explain.maps import upsample
from densenet_interp.models.densenet import build_compact_densenet, build_densenet169
from densenet_interp.paths import Layout, write_text_atomic
from densenet_interp.profiles import get_profile

BUDGET = 1.2


def build_model(profile) -> keras.Model:
    """The profile's architecture with random weights (compact DenseNet-BC or DenseNet-169)."""
    if profile.architecture == "compact":
        return build_compact_densenet(profile.blocks, profile.growth_rate, profile.image_size, seed=0)
    return build_densenet169(profile.image_size)


class PerLayer:
    """The per-layer way: one sub-model per explained layer, each with its own forward pass."""

    def __init__(self, model: keras.Model, explainer: Explainer):
        names = explainer.layer_names
        self.submodels = {
            stage: keras.Model(model.inputs, model.get_layer(names[stage]).output) for stage in names
        }
        self.weights, self.bias = explainer.cam_weights
        self.size = explainer.input_size

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        out = {stage: np.asarray(sub.predict_on_batch(batch)) for stage, sub in self.submodels.items()}
        cam_lowres = out[FINAL] @ self.weights
        out["cam"] = upsample(cam_lowres, self.size)
        out["probability"] = 1.0 / (1.0 + np.exp(-(cam_lowres.mean(axis=(1, 2)) + self.bias)))
        return out


def measure(functions: dict, batch: np.ndarray, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each function, interleaved; the first ``warmup`` rounds (tracing) are dropped."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for round_index in range(warmup + repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function(batch)
            if round_index >= warmup:
                times[name].append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="tiny, mini (default: $PROFILE or mini) or paper")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    model = build_model(profile)
    explainer = explainer_for(model)  # layers="stages"
    per_layer = PerLayer(model, explainer)
    batch = np.random.default_rng(0).uniform(0, 255, (args.batch, profile.image_size, profile.image_size, 3))
    batch = batch.astype(np.float32)

    explanation = explainer.explain(batch)  # the one-pass and per-layer results agree (same model, same maps)
    reference = per_layer(batch)
    np.testing.assert_allclose(explanation.cam, reference["cam"], rtol=1e-3, atol=1e-3)
    for stage in STAGES:
        np.testing.assert_allclose(explanation.stages[stage], reference[stage], rtol=1e-3, atol=1e-3)

    times = measure(
        {"explain_one_pass": explainer.explain, "predict": model.predict_on_batch, "per_layer": per_layer},
        batch,
        args.repeats,
        args.warmup,
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "profile": profile.name,
        "model": model.name,
        "parameters": int(model.count_params()),
        "image_size": profile.image_size,
        "batch": args.batch,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "median_seconds": medians,
        "all_seconds": times,
        "ratio_explain_to_predict": medians["explain_one_pass"] / medians["predict"],
        "ratio_per_layer_to_predict": medians["per_layer"] / medians["predict"],
        "budget_explain_to_predict": BUDGET,
        "within_budget": medians["explain_one_pass"] / medians["predict"] <= BUDGET,
        "per_layer_submodels": len(per_layer.submodels),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "keras": keras.__version__},
    }
    target = Layout.for_profile(profile.name).results / "benchmarks" / "explain_ratio.json"
    write_text_atomic(target, json.dumps(result, indent=2) + "\n")
    print(
        f"{profile.name}: batch {args.batch} at {profile.image_size} px, medians of {args.repeats}: "
        f"explain {medians['explain_one_pass'] * 1e3:.1f} ms, predict {medians['predict'] * 1e3:.1f} ms, "
        f"per-layer {medians['per_layer'] * 1e3:.1f} ms -> explain/predict "
        f"{result['ratio_explain_to_predict']:.2f} (budget {BUDGET}), per-layer/predict "
        f"{result['ratio_per_layer_to_predict']:.2f}; written to {target}"
    )
    return result


if __name__ == "__main__":
    main()
