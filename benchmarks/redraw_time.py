"""How fast does the explorer redraw when a slider moves? (target: at most 100 ms after the first view)

Builds the explorer headless with a profile's model (untrained: redraw cost does not depend on the weights)
and one radiograph-like image, then makes ``--moves`` control moves as a user would: mostly the layer slider,
across the whole network (early layers have the largest maps), and every few moves the channel count or the
CAM opacity.
Each redraw is timed from the control's change to the new PNG in the ``ipywidgets.Image``. The first view
(which includes the one forward pass) is reported separately, and so is the first switch of the "map"
dropdown to each registered saliency method (:data:`densenet_interp.explain.methods.METHODS`): a gradient
method's map costs one taped pass the first time, then it is cached with the image. Writes
``results/<profile>/benchmarks/redraw_time.json``.

Usage: ``python benchmarks/redraw_time.py [--profile mini] [--moves 20]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import keras
import numpy as np

from densenet_interp.app.widgets import Explorer
from densenet_interp.models.densenet import build_compact_densenet, build_densenet169
from densenet_interp.paths import Layout, write_text_atomic
from densenet_interp.profiles import get_profile

TARGET_SECONDS = 0.100


def build_model(profile) -> keras.Model:
    if profile.architecture == "compact":
        return build_compact_densenet(profile.blocks, profile.growth_rate, profile.image_size, seed=0)
    return build_densenet169(profile.image_size)


def radiograph(height: int = 400, width: int = 320) -> np.ndarray:
    """A smooth bright blob (soft tissue and bone) on a dark background, with noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = 20 + 140 * np.exp(
        -(((x - width / 2) / (width * 0.2)) ** 2 + ((y - height / 2) / (height * 0.35)) ** 2)
    )
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="tiny, mini (default: $PROFILE or mini) or paper")
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    explorer = Explorer(
        {profile.name: build_model(profile)}, {"radiograph": radiograph()}, profile.image_size
    )
    first_view = explorer.redraw_seconds[-1]
    layers = explorer.layer_names
    for move in range(args.moves):  # one control per move, mostly the layer slider
        if move % 5 == 4:
            explorer.k_control.value = 4 + (move % 13)
        elif move % 5 == 2:
            explorer.alpha_control.value = round(0.2 + 0.05 * (move % 10), 2)
        else:
            explorer.layer_control.value = layers[(move * 7) % len(layers)]  # spread over the whole network
    redraws = explorer.redraw_seconds[1:]
    first_map_seconds = {}  # the first switch to each method: computes its map, then redraws
    for name in [*explorer.method_control.options[1:], explorer.method_control.options[0]]:
        started = time.perf_counter()
        explorer.method_control.value = name
        first_map_seconds[name] = time.perf_counter() - started
    result = {
        "profile": profile.name,
        "model": explorer.state()["model"],
        "image_size": profile.image_size,
        "layers_on_slider": len(layers),
        "moves": args.moves,
        "redraws_timed": len(redraws),
        "forward_passes": explorer.forward_passes,
        "first_view_seconds": first_view,
        "median_redraw_seconds": statistics.median(redraws),
        "p90_redraw_seconds": float(np.percentile(redraws, 90)),
        "max_redraw_seconds": max(redraws),
        "target_seconds": TARGET_SECONDS,
        "within_target": statistics.median(redraws) <= TARGET_SECONDS,
        "all_redraw_seconds": redraws,
        "first_map_switch_seconds": first_map_seconds,
        "machine": {"cpus": os.cpu_count()},
    }
    target = Layout.for_profile(profile.name).results / "benchmarks" / "redraw_time.json"
    write_text_atomic(target, json.dumps(result, indent=2) + "\n")
    print(
        f"{profile.name}: {len(redraws)} redraws over {len(layers)} layers, median "
        f"{result['median_redraw_seconds'] * 1e3:.1f} ms (p90 {result['p90_redraw_seconds'] * 1e3:.1f}, max "
        f"{result['max_redraw_seconds'] * 1e3:.1f}; target {TARGET_SECONDS * 1e3:.0f} ms), first view "
        f"{first_view * 1e3:.0f} ms, forward passes {explorer.forward_passes}; written to {target}"
    )
    return result


if __name__ == "__main__":
    main()
