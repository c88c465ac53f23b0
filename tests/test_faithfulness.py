"""Tests of the faithfulness checks: deletion/insertion curves, pixel order, Grad-CAM against CAM, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from densenet_interp.data.images import to_model_input
from densenet_interp.evaluate import faithfulness as fa
from densenet_interp.explain.engine import Explainer
from densenet_interp.explain.maps import upsample
from densenet_interp.explain.methods import METHODS, gradcam
from densenet_interp.profiles import PROFILES

TINY = PROFILES["tiny"]
SIZE = 32


def _region_mean_model(region: np.ndarray):
    """A 'model' whose probability is the mean brightness (0..1) of ``region``: it uses that region only."""

    def predict(batch: np.ndarray) -> np.ndarray:
        return batch[..., 0][:, region].mean(axis=1) / 255.0

    return predict


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8)


# --------------------------------------------------------------------------------------- deletion/insertion
def test_deleting_the_used_region_first_drops_fastest():
    region = np.zeros((SIZE, SIZE), dtype=bool)
    region[4:12, 20:28] = True
    image = np.where(region, 250, 10).astype(np.uint8)
    model = _region_mean_model(region)
    informed = fa.deletion_insertion(model, image, region.astype(float), steps=16)
    random = fa.deletion_insertion(model, image, np.random.default_rng(1).uniform(size=image.shape), steps=16)
    assert informed["deletion"][0] == pytest.approx(250 / 255) and len(informed["deletion"]) == 17
    assert informed["deletion_auc"] < 0.5 * random["deletion_auc"]
    assert informed["insertion_auc"] > random["insertion_auc"]
    # the region is 1/16 of the image: after the first step it is gone (filled with the image mean)
    assert informed["deletion"][1] == pytest.approx(np.rint(image.mean()) / 255, abs=1e-6)


def test_deletion_and_insertion_run_in_one_batched_forward_pass():
    calls = []

    def model(batch):
        calls.append(len(batch))
        return batch[..., 0].mean(axis=(1, 2)) / 255.0

    fa.deletion_insertion(model, _images(1, SIZE)[0], np.zeros((SIZE, SIZE)), steps=8)
    assert calls == [2 * 9]


def test_deletion_insertion_rejects_mismatched_saliency():
    with pytest.raises(
        ValueError, match=r"saliency has shape \(8, 8\); expected the image's shape \(32, 32\)"
    ):
        fa.deletion_insertion(lambda b: b.mean(axis=(1, 2, 3)), _images(1, SIZE)[0], np.zeros((8, 8)))


def test_saliency_order_is_descending_and_breaks_ties_deterministically():
    saliency = np.array([[0.0, 3.0], [3.0, 1.0]])
    order = fa.saliency_order(saliency, seed=0)
    assert set(order[:2]) == {1, 2} and list(order[2:]) == [3, 0]
    flat = np.zeros((8, 8))
    assert (fa.saliency_order(flat, seed=5) == fa.saliency_order(flat, seed=5)).all()
    assert not (fa.saliency_order(flat, seed=5) == np.arange(64)).all()


# ------------------------------------------------------------------------------------------ Grad-CAM vs CAM
def _mixed_sign_head(model, batch: np.ndarray) -> None:
    """Set the head so the CAM of the first image has mean 0 and a positive corner: both signs guaranteed."""
    final = Explainer(model).explain(batch).final[0]  # (h, w, C)
    mean = final.mean(axis=(0, 1))
    direction = final[0, 0] - mean
    kernel = direction - (direction @ mean) / (mean @ mean) * mean  # orthogonal to the mean: mean CAM = 0
    model.get_layer("predictions").kernel.assign(kernel[:, np.newaxis].astype(np.float32))


def test_gradcam_on_the_final_layer_is_relu_of_cam_up_to_a_positive_scale(tiny_profile_model):
    model = tiny_profile_model(seed=1)
    batch = to_model_input(_images(3, TINY.image_size, seed=2))
    _mixed_sign_head(model, batch)
    explainer = Explainer(model)
    explanation = explainer.explain(batch)
    maps = fa.saliency_maps(explainer, explanation, seed=0)
    cam = explanation.cam_lowres
    assert (cam[0] < 0).any() and (cam[0] > 0).any()  # otherwise ReLU would not be tested
    lowres = gradcam(explainer, batch, explanation.layer_names["final"], target="logit", method="gradcam")
    grid = cam.shape[1] * cam.shape[2]
    relu_cam = np.maximum(cam, 0.0)
    np.testing.assert_allclose(lowres, relu_cam / grid, rtol=1e-4, atol=1e-6)  # scale 1 / (h * w): the GAP
    np.testing.assert_allclose(
        maps["gradcam"], upsample(relu_cam / grid, TINY.image_size), rtol=1e-4, atol=1e-6
    )
    assert maps["cam"].shape == maps["gradcam++"].shape == maps["random"].shape == (3, 64, 64)


# -------------------------------------------------------------------------------------------------- tables
def test_faithfulness_table_per_method_on_a_tiny_model(tiny_profile_model):
    images_u8 = _images(3, TINY.image_size, seed=4)
    images = pd.DataFrame({"path": ["a", "b", "c"], "patient": ["p1", "p1", "p2"], "label": [1, 1, 1]})
    lesion = np.zeros((TINY.image_size,) * 2, dtype=bool)
    lesion[10:20, 10:20] = True
    annotations = {p: {"lesion": lesion} for p in images["path"]}
    per_image = fa.faithfulness_per_image(
        tiny_profile_model(), images_u8, images, model_set="tiny", annotations=annotations, steps=4, batch_size=2,
        masks_for=lambda a, size: {"lesion": a["lesion"], "legend": ~a["lesion"], "frame": 0 * a["lesion"],
                                   "anatomy": a["lesion"]},
    )  # fmt: skip
    assert len(per_image) == 3 * len(METHODS)
    cam_rows = per_image[per_image["method"] == "cam"]
    assert np.allclose(cam_rows["rank_correlation_with_cam"], 1.0)
    assert per_image["deletion_auc"].between(0, 1).all() and per_image["insertion_auc"].between(0, 1).all()
    table = fa.faithfulness_table(per_image, n_boot=100)
    assert list(table["method"]) == list(METHODS)
    assert (table["n_images"] == 3).all()
    assert (table["deletion_auc_low"] <= table["deletion_auc"]).all()
    text = fa.faithfulness_markdown(table, "fixture", steps=4)
    assert "### tiny" in text and "| gradcam++ | 3 |" in text


def test_select_abnormal_caps_and_is_deterministic():
    images = pd.DataFrame({"label": [1, 0] * 20, "path": [f"i{i}" for i in range(40)]})
    chosen = fa.select_abnormal(images, 5, seed=1)
    assert len(chosen) == 5 and (chosen["label"] == 1).all()
    assert chosen.index.tolist() == fa.select_abnormal(images, 5, seed=1).index.tolist()
    assert len(fa.select_abnormal(images, 100)) == 20


def test_maps_come_from_the_registry_with_one_seed_per_batch(tiny_profile_model):
    model = tiny_profile_model(seed=3)
    images_u8 = _images(5, TINY.image_size, seed=6)
    explainer = Explainer(model)
    maps = fa._maps_in_batches(explainer, images_u8, batch_size=2, seed=5)
    assert list(maps) == ["probability", *METHODS]
    for start in (0, 2, 4):  # the random map of the batch from `start` is drawn with seed + start
        part = maps["random"][start : start + 2]
        expected = np.random.default_rng(5 + start).uniform(size=part.shape).astype(np.float32)
        np.testing.assert_array_equal(part, expected)
    np.testing.assert_allclose(maps["cam"], explainer.explain(to_model_input(images_u8)).cam, atol=1e-5)
