"""Tests of the model builders, weights files, model loading and stage lookup (small inputs, CPU)."""

from __future__ import annotations

import dataclasses

import h5py
import keras
import numpy as np
import pytest

from densenet_interp.errors import ModelFileError
from densenet_interp.models import densenet as models
from densenet_interp.models.weights import (
    WEIGHTS_ENV,
    load_backbone_weights,
    read_layer_weights,
    save_backbone_weights,
)
from densenet_interp.profiles import PROFILES

TINY = PROFILES["tiny"]
STAGE_LAYERS = ["conv1_relu", "pool1", "conv2_block6_concat", "pool2_pool", "conv3_block12_concat"]
STAGE_LAYERS += ["pool3_pool", "conv4_block32_concat", "pool4_pool", "conv5_block32_concat", "bn", "relu"]


@pytest.fixture(scope="module")
def densenet169_32():
    """The paper's model at 32x32 (the smallest size DenseNet-169 accepts), built once for this module."""
    keras.utils.set_random_seed(1)
    return models.build_densenet169(32)


@pytest.fixture(scope="module")
def keras_densenet169_32():
    keras.utils.set_random_seed(2)
    return keras.applications.DenseNet169(include_top=False, weights=None, input_shape=(32, 32, 3))


# ---------------------------------------------------------------------------------------------- structure
def test_compact_169_matches_keras_densenet169(keras_densenet169_32):
    ours = models.build_compact_densenet((6, 12, 32, 32), 32, 32, seed=0)
    head_params = 1664 + 1  # Dense(1) on DenseNet-169's 1664 final feature maps
    assert ours.count_params() == keras_densenet169_32.count_params() + head_params
    for name in STAGE_LAYERS:
        assert ours.get_layer(name).output.shape == keras_densenet169_32.get_layer(name).output.shape, name
    # same weighted layers, same names, same weight shapes, in the same order
    ours_w = [(layer.name, [w.shape for w in layer.weights]) for layer in ours.layers if layer.weights]
    ref_w = [
        (layer.name, [w.shape for w in layer.weights])
        for layer in keras_densenet169_32.layers
        if layer.weights
    ]
    assert ours_w[:-1] == ref_w and ours_w[-1][0] == "predictions"


def test_densenet169_is_flat_with_keras_names(densenet169_32, keras_densenet169_32):
    assert not any(isinstance(layer, keras.Model) for layer in densenet169_32.layers)
    assert densenet169_32.count_params() == keras_densenet169_32.count_params() + 1665
    assert densenet169_32.layers[1].name == "preprocess"
    assert [layer.name for layer in densenet169_32.layers[-2:]] == ["avg_pool", "predictions"]
    assert densenet169_32.get_layer("predictions").activation is keras.activations.sigmoid
    assert densenet169_32.get_layer("conv3_block4_concat").output.shape == (None, 4, 4, 256)


def test_compact_layer_names_and_stages(tiny_profile_model):
    model = tiny_profile_model()
    names = {layer.name for layer in model.layers}
    expected = {"preprocess", "conv1_conv", "conv1_bn", "conv1_relu", "pool1", "avg_pool", "predictions"}
    expected |= {
        f"conv3_block2_{suffix}" for suffix in ("0_bn", "0_relu", "1_conv", "1_bn", "1_relu", "2_conv")
    }
    expected |= {f"pool{k}_{suffix}" for k in (2, 3, 4) for suffix in ("bn", "relu", "conv", "pool")}
    assert expected <= names
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert models.stage_layer_names(model) == {
        "initial_conv": "conv1_relu",
        "block1": "conv2_block1_concat",
        "block2": "conv3_block2_concat",
        "block3": "conv4_block2_concat",
        "block4": "conv5_block1_concat",
        "final": "relu",
    }
    assert list(models.stage_layer_names(model)) == [
        "initial_conv",
        "block1",
        "block2",
        "block3",
        "block4",
        "final",
    ]
    # growth 8, stem 16: 16 -> +8 -> 24 -> 12 -> +16 -> 28 -> 14 -> +16 -> 30 -> 15 -> +8 -> 23 channels
    assert model.get_layer("relu").output.shape == (None, 2, 2, 23)


def test_backbone_without_top_ends_at_relu(tiny_profile_model):
    backbone = tiny_profile_model(include_top=False)
    assert backbone.layers[-1].name == "relu"
    assert "predictions" not in {layer.name for layer in backbone.layers}


def test_compact_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"four positive integers.*\(1, 2\)"):
        models.build_compact_densenet((1, 2), 8, 64)
    with pytest.raises(ValueError, match="image_size must be an integer >= 32, .*16|>= 32.*got 16"):
        models.build_compact_densenet((1, 1, 1, 1), 8, 16)


def test_preprocess_equals_keras_preprocess_input(random_batch, tiny_profile_model):
    x = random_batch(2, 64)
    model = tiny_profile_model()
    preprocess = keras.Model(model.input, model.get_layer("preprocess").output)
    expected = keras.applications.densenet.preprocess_input(x.copy())
    np.testing.assert_allclose(np.asarray(preprocess(x)), expected, atol=1e-5)


def test_same_seed_same_initial_weights(tiny_profile_model):
    a, b, c = tiny_profile_model(seed=3), tiny_profile_model(seed=3), tiny_profile_model(seed=4)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(
        a.get_layer("conv1_conv").get_weights()[0], c.get_layer("conv1_conv").get_weights()[0]
    )


def test_build_model_dispatches_on_profile():
    model = models.build_model(TINY, pretrained=False, seed=0)
    assert model.name == "densenet_bc_1-2-2-1_k8"
    assert model.input.shape == (None, 64, 64, 3) and model.output.shape == (None, 1)
    assert not model.compiled  # uncompiled


def test_build_model_pretrained_without_weights_file_fails(tmp_path):
    with pytest.raises(ModelFileError, match="densenet-interp pretrain --profile tiny") as info:
        models.build_model(TINY, pretrained=True, weights_path=tmp_path / "absent.weights.h5")
    assert "absent.weights.h5" in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------- weights files
def _relu_features(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(keras.Model(model.input, model.get_layer("relu").output)(x))


def test_densenet169_loads_local_weights_file(tmp_path, keras_densenet169_32, random_batch):
    """A backbone file written by save_backbone_weights from keras' own DenseNet169 loads by name."""
    path = save_backbone_weights(keras_densenet169_32, tmp_path / "d169.weights.h5")
    model = models.build_densenet169(32, weights=path)
    x = random_batch(2, 32)
    expected = np.asarray(keras_densenet169_32(keras.applications.densenet.preprocess_input(x.copy())))
    np.testing.assert_allclose(_relu_features(model, x), expected, rtol=1e-4, atol=1e-4)
    again = models.build_densenet169(32, weights=path)
    np.testing.assert_array_equal(_relu_features(again, x), _relu_features(model, x))


def test_densenet169_loads_keras_legacy_h5_layout(tmp_path, keras_densenet169_32):
    """Keras' own HDF5 weights writer (the layout of the published ImageNet no-top file) is read by name."""
    from keras.src.legacy.saving import legacy_h5_format  # the writer of the ImageNet files' layout

    path = tmp_path / models.DENSENET169_NOTOP_FILE
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_densenet169_32)
        # the published file was written by Keras 2, whose stem layers were named "conv1/conv", "conv1/bn"
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        f.attrs["layer_names"] = np.array([n.replace("conv1_", "conv1/").encode() for n in names])
        f.create_group("conv1")
        for layer in ("conv", "bn", "relu"):
            f.move(f"conv1_{layer}", f"conv1/{layer}")
    model = models.build_densenet169(32, weights=str(path))
    for name in ("conv1_conv", "conv1_bn", "conv4_block7_1_bn", "bn"):
        for got, want in zip(
            model.get_layer(name).get_weights(),
            keras_densenet169_32.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(got, want)


def test_densenet169_rejects_compact_weights(tmp_path, tiny_profile_model):
    path = save_backbone_weights(tiny_profile_model(include_top=False), tmp_path / "compact.weights.h5")
    with pytest.raises(
        ModelFileError, match=r"layer 'conv1_conv' has weight shapes \[\(7, 7, 3, 16\)\]"
    ) as info:
        models.build_densenet169(32, weights=path)
    message = str(info.value)
    assert str(path) in message and "(7, 7, 3, 64)" in message and "no-top DenseNet-169" in message
    assert "\n" not in message


def test_build_model_paper_reads_weights_path_from_environment(tmp_path, monkeypatch, tiny_profile_model):
    path = save_backbone_weights(tiny_profile_model(include_top=False), tmp_path / "from_env.h5")
    monkeypatch.setenv(WEIGHTS_ENV, str(path))
    paper_small = dataclasses.replace(PROFILES["paper"], image_size=32)
    with pytest.raises(ModelFileError, match="from_env.h5: layer 'conv1_conv'"):
        models.build_model(paper_small, pretrained=True)
    assert models.build_model(paper_small, pretrained=False).name == "densenet169"  # env unused if random


def test_imagenet_download_failure_is_one_line(monkeypatch):
    def offline(**kwargs):
        assert kwargs["weights"] == "imagenet" and kwargs["include_top"] is False
        raise OSError("URL fetch failure: no route to host")

    monkeypatch.setattr(keras.applications, "DenseNet169", offline)
    with pytest.raises(ModelFileError, match=f"set {WEIGHTS_ENV} to its path") as info:
        models.build_densenet169(32, weights="imagenet")
    assert "no route to host" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("content", [None, b"not hdf5 at all\n"])
def test_densenet169_rejects_missing_or_unreadable_weights(tmp_path, content):
    path = tmp_path / "weights.h5"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not found|not a readable HDF5") as info:
        models.build_densenet169(32, weights=path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_keras3_weights_file_is_rejected_with_reason(tmp_path, tiny_profile_model):
    path = tmp_path / "k3.weights.h5"
    tiny_profile_model(include_top=False).save_weights(path)
    with pytest.raises(ModelFileError, match="Keras 3 .weights.h5"):
        read_layer_weights(path)


def test_load_backbone_weights_copies_by_name_and_keeps_head(tmp_path, tiny_profile_model):
    source = tiny_profile_model(seed=5, include_top=False)
    path = save_backbone_weights(source, tmp_path / "backbone.weights.h5")
    target = tiny_profile_model(seed=6)
    head_before = target.get_layer("predictions").get_weights()
    loaded = load_backbone_weights(target, path)
    assert "conv1_conv" in loaded and "predictions" not in loaded
    for layer in source.layers:
        for got, want in zip(target.get_layer(layer.name).get_weights(), layer.get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(target.get_layer("predictions").get_weights(), head_before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_load_backbone_weights_refuses_partial_files(tmp_path, tiny_profile_model):
    source = tiny_profile_model(include_top=False)
    path = tmp_path / "partial.weights.h5"
    save_backbone_weights(source, path)
    with h5py.File(path, "a") as f:
        names = [n for n in f.attrs["layer_names"] if n != b"bn"]
        f.attrs["layer_names"] = names
    with pytest.raises(ModelFileError, match=r"1 layers .* not in the file \(first: \['bn'\]\)"):
        load_backbone_weights(tiny_profile_model(), path)


# ---------------------------------------------------------------------------------------------- load_model
def test_load_model_round_trip(tmp_path, random_batch, tiny_profile_model):
    model = tiny_profile_model()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = models.load_model(path)
    x = random_batch(2, 64)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    assert models.stage_layer_names(loaded) == models.stage_layer_names(model)


def test_load_model_rejects_missing_and_text_files(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found") as info:
        models.load_model(tmp_path / "absent.keras")
    assert "absent.keras" in str(info.value)
    text = tmp_path / "model.keras"
    text.write_text("this is not a model\n")
    with pytest.raises(ModelFileError, match="not a zip archive") as info:
        models.load_model(text)
    assert str(text) in str(info.value) and "\n" not in str(info.value)


def test_load_model_rejects_corrupt_archive(tmp_path):
    import zipfile

    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{not json")
    with pytest.raises(ModelFileError, match="could not load the model") as info:
        models.load_model(path)
    assert "\n" not in str(info.value)


def test_load_model_rejects_model_without_predictions(tmp_path, tiny_profile_model):
    path = tmp_path / "backbone.keras"
    tiny_profile_model(include_top=False).save(path)
    with pytest.raises(ModelFileError, match=r"lacks the layers \['predictions'\]") as info:
        models.load_model(path)
    assert str(path) in str(info.value)


def test_load_model_rejects_multi_output_head(tmp_path, tiny_profile_model):
    path = tmp_path / "three.keras"
    tiny_profile_model(num_outputs=3, activation="softmax").save(path)
    with pytest.raises(ModelFileError, match="Dense with 3 units; expected Dense with 1 unit"):
        models.load_model(path)


# ---------------------------------------------------------------------------------------------- training
def test_paper_model_trains_one_step(random_batch):
    """One Adam step of the paper's DenseNet-169 (64x64, eager: graph tracing alone takes ~1 min on CPU)."""
    keras.utils.set_random_seed(0)
    model = models.build_densenet169(64)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy", run_eagerly=True)
    before = model.get_layer("conv1_conv").get_weights()[0].copy()
    loss = model.train_on_batch(random_batch(2, 64), np.array([[0.0], [1.0]], dtype="float32"))
    assert np.isfinite(loss), loss
    # gradients reach the stem through all 169 layers
    assert not np.array_equal(model.get_layer("conv1_conv").get_weights()[0], before)


def test_the_smoke_profile_starts_from_local_imagenet_weights_or_random_never_a_download(
    monkeypatch, tmp_path
):
    from densenet_interp.models.weights import initial_weights
    from densenet_interp.profiles import MODEL_SETS

    smoke = PROFILES["paper-smoke"]
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert initial_weights(smoke, MODEL_SETS["wrist_pretrained"]) == ("random", None)
    assert "random initial weights (no $DENSENET_WEIGHTS; not ImageNet)" in smoke.data_label
    assert initial_weights(PROFILES["paper"], MODEL_SETS["wrist_pretrained"]) == (
        "imagenet",
        None,
    )  # download
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "densenet169_notop.h5"))
    assert initial_weights(smoke, MODEL_SETS["wrist_pretrained"]) == (
        "imagenet",
        tmp_path / "densenet169_notop.h5",
    )
    assert initial_weights(smoke, MODEL_SETS["wrist_random"]) == ("random", None)
    assert (
        "ImageNet weights from $DENSENET_WEIGHTS" in smoke.data_label and "phantom MURA" in smoke.data_label
    )


def test_the_smoke_profile_is_the_paper_profile_but_for_its_listed_departures():
    import dataclasses as dc

    paper, smoke = PROFILES["paper"], PROFILES["paper-smoke"]
    differing = {f.name for f in dc.fields(paper) if getattr(paper, f.name) != getattr(smoke, f.name)}
    assert differing == {
        "name", "smoke", "phantom_scale", "epochs", "pretraining", "max_train_images", "departures"
    }  # fmt: skip
    assert (smoke.architecture, smoke.image_size, smoke.batch_size, smoke.learning_rate) == (
        "densenet169",
        320,
        8,
        1e-4,
    )
    listed = " ".join(smoke.departures)
    for what in ("phantom MURA", "2 epochs", "16 training images", "random", "majority-class rate"):
        assert what in listed
