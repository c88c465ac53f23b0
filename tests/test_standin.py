"""Tests of the stand-in source task and of stand-in pre-training (tiny profile)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from densenet_interp.cli import main
from densenet_interp.errors import ModelFileError
from densenet_interp.models import densenet as models
from densenet_interp.models import standin
from densenet_interp.models.weights import read_layer_weights
from densenet_interp.profiles import PROFILES

TINY = PROFILES["tiny"]


def test_source_task_shapes_and_class_major_labels():
    x, y = standin.generate_source_task(5, 3, 48, seed=0)
    assert x.shape == (15, 48, 48, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, np.repeat(np.arange(5), 3))
    assert x.std() > 20  # images have content, not a flat fill


def test_source_task_is_deterministic():
    a = standin.generate_source_task(6, 4, 32, seed=7)
    b = standin.generate_source_task(6, 4, 32, seed=7)
    c = standin.generate_source_task(6, 4, 32, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_classes_are_distinct_pairs():
    pairs = standin.class_pairs(standin.MAX_CLASSES)
    assert len(set(pairs)) == standin.MAX_CLASSES == 77
    assert len({shape for shape, _ in standin.class_pairs(11)}) == 11  # the first classes vary the shape
    with pytest.raises(ValueError, match="from 2 to 77, got 78"):
        standin.class_pairs(78)


def test_classes_are_distinguishable_whatever_the_position():
    """A nearest-centroid classifier on the (translation-invariant) power spectrum beats chance by far."""
    n_classes, per_class = 8, 32
    x, y = standin.generate_source_task(n_classes, per_class, 64, seed=0)
    grey = x.astype(np.float32).mean(axis=-1)
    spectrum = np.log1p(np.abs(np.fft.fft2(grey - grey.mean(axis=(1, 2), keepdims=True))))
    first_half = np.arange(len(y)) % per_class < per_class // 2
    centroids = np.stack([spectrum[first_half & (y == k)].mean(axis=0) for k in range(n_classes)])
    test = ~first_half
    distances = ((spectrum[test][:, None] - centroids[None]) ** 2).sum(axis=(2, 3))
    accuracy = (distances.argmin(axis=1) == y[test]).mean()
    assert accuracy > 0.5, accuracy  # chance is 0.125


def test_split_validation_is_stratified_and_disjoint():
    y = np.repeat(np.arange(4), 20)
    train, val = standin.split_validation(y, 0.1)
    assert set(train).isdisjoint(val) and len(train) + len(val) == len(y)
    np.testing.assert_array_equal(np.bincount(y[val]), [2, 2, 2, 2])
    with pytest.raises(ValueError, match="class 0 has 1 images"):
        standin.split_validation(np.array([0, 1, 1]))


def test_pretrain_command_skips_the_paper_profile(tmp_path, capsys):
    out = tmp_path / "w.weights.h5"
    assert main(["pretrain", "--profile", "paper", "--out", str(out)]) == 0
    assert "ImageNet" in capsys.readouterr().out
    assert not out.exists()


@pytest.fixture(scope="module")
def tiny_pretrained(tmp_path_factory):
    """Run ``densenet-interp pretrain --profile tiny --out ...`` once for the tests below."""
    out = tmp_path_factory.mktemp("standin") / "backbone.weights.h5"
    assert main(["pretrain", "--profile", "tiny", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_pretrain_writes_backbone_weights_and_card(tiny_pretrained):
    assert tiny_pretrained.is_file()
    assert [p.name for p in tiny_pretrained.parent.iterdir() if p.name.startswith(".")] == []  # no temp files
    card = json.loads(standin.card_path(tiny_pretrained).read_text())
    assert card["profile"] == "tiny" and card["seed"] == 0 and card["epochs"] == TINY.standin_epochs
    assert len(card["classes"]) == TINY.standin_classes
    assert card["images"] == {"train": 112, "validation": 16}
    assert len(card["history"]["accuracy"]) == len(card["history"]["val_accuracy"]) == TINY.standin_epochs
    assert {"python", "numpy", "keras", "tensorflow"} <= set(card["versions"])
    stored = read_layer_weights(tiny_pretrained)
    assert "conv1_conv" in stored and "bn" in stored
    assert "standin_predictions" not in stored and "predictions" not in stored  # backbone only


@pytest.mark.slow
def test_build_model_loads_the_standin_backbone(tiny_pretrained):
    pretrained = models.build_model(TINY, pretrained=True, weights_path=tiny_pretrained, seed=0)
    random_init = models.build_model(TINY, pretrained=False, seed=0)
    stored = read_layer_weights(tiny_pretrained)
    for name, arrays in stored.items():
        layer = pretrained.get_layer(name)
        for variable, array in zip(
            layer.trainable_weights + layer.non_trainable_weights, arrays, strict=True
        ):
            np.testing.assert_array_equal(np.asarray(variable), array)
    conv = "conv3_block2_2_conv"
    assert not np.array_equal(
        pretrained.get_layer(conv).get_weights()[0], random_init.get_layer(conv).get_weights()[0]
    )
    for got, want in zip(
        pretrained.get_layer("predictions").get_weights(),
        random_init.get_layer("predictions").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)  # the head keeps its (seeded) random initialisation


@pytest.mark.slow
def test_standin_weights_do_not_fit_another_profile(tiny_pretrained):
    with pytest.raises(ModelFileError, match="layer 'conv1_conv' has weight shapes"):
        models.build_model(PROFILES["mini"], pretrained=True, weights_path=tiny_pretrained)
