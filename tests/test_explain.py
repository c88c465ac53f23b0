"""The explanation engine: one pass, exact CAM (logit identity), channel ranking, Grad-CAM(++), the batch
iterator, the cache; and the method registry."""

from __future__ import annotations

import gc
import weakref

import keras
import numpy as np
import pytest

from densenet_interp.errors import ModelFileError
from densenet_interp.explain.engine import (
    FINAL,
    STAGES,
    ActivationCache,
    Explainer,
    explainer_for,
    iter_explanations,
)
from densenet_interp.explain.maps import top_channels
from densenet_interp.explain.methods import METHODS, gradcam
from densenet_interp.models.densenet import build_compact_densenet, stage_layer_names


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model()


@pytest.fixture(scope="module")
def explainer(model):
    return Explainer(model)


@pytest.fixture(scope="module")
def batch(random_batch):
    return random_batch(3, 128)


@pytest.fixture(scope="module")
def explanation(explainer, batch):
    return explainer.explain(batch)


def test_one_pass_gives_prediction_stages_final_and_cam(model, explanation, batch):
    names = stage_layer_names(model)
    assert explanation.layer_names == {stage: names[stage] for stage in (*STAGES, FINAL)}
    for stage in STAGES:
        expected = tuple(model.get_layer(names[stage]).output.shape[1:])
        assert explanation.stages[stage].shape == (3, *expected), stage
        assert explanation.stages[stage].dtype == np.float32
    assert explanation.final.shape == (3, 4, 4, model.get_layer("relu").output.shape[-1])
    assert explanation.cam_lowres.shape == (3, 4, 4) and explanation.cam.shape == (3, 128, 128)
    predicted = np.asarray(model.predict_on_batch(batch)).reshape(-1)
    np.testing.assert_allclose(explanation.probability, predicted, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(explanation.inputs, batch)


def test_stage_activations_equal_the_layers_own_outputs(model, explanation, batch):
    probe = keras.Model(model.inputs, model.get_layer(explanation.layer_names["block2"]).output)
    np.testing.assert_allclose(
        explanation.stages["block2"], probe.predict_on_batch(batch), rtol=1e-4, atol=1e-5
    )


def test_logit_equals_mean_cam_plus_bias_and_gives_the_probability(explanation):
    # The logit comes from the head's own pooled input; the CAM from the final maps and the head's kernel.
    np.testing.assert_allclose(
        explanation.logit,
        explanation.cam_lowres.mean(axis=(1, 2)) + explanation.cam_bias,
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-explanation.logit)), explanation.probability, atol=1e-6)


def test_cam_is_the_weighted_sum_of_final_maps(explanation):
    np.testing.assert_allclose(
        explanation.cam_lowres, explanation.final @ explanation.cam_weights, rtol=1e-5, atol=1e-6
    )


def test_cam_upsampling_is_bilinear_and_aligned(explanation):
    cam, low = explanation.cam, explanation.cam_lowres
    # bilinear interpolation never leaves the range of the low-resolution map
    assert (cam.min(axis=(1, 2)) >= low.min(axis=(1, 2)) - 1e-5).all()
    assert (cam.max(axis=(1, 2)) <= low.max(axis=(1, 2)) + 1e-5).all()
    # half-pixel centres: the corner pixels equal the corner cells (no shift, no flip)
    np.testing.assert_allclose(cam[:, 0, 0], low[:, 0, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cam[:, -1, -1], low[:, -1, -1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cam[:, 0, -1], low[:, 0, -1], rtol=1e-5, atol=1e-6)


def test_cam_reads_the_current_head_weights(batch, tiny_model):
    model = tiny_model(seed=1)
    head = model.get_layer("predictions")
    kernel = np.zeros(tuple(head.kernel.shape), dtype=np.float32)
    kernel[3, 0] = 2.0
    head.kernel.assign(kernel)
    head.bias.assign(np.array([-0.25], dtype=np.float32))
    explanation = Explainer(model).explain(batch[:2])
    np.testing.assert_allclose(explanation.cam_lowres, 2.0 * explanation.final[..., 3], rtol=1e-6)
    assert explanation.cam_bias == pytest.approx(-0.25)


def test_explain_rejects_a_batch_of_the_wrong_shape(explainer):
    with pytest.raises(
        ValueError, match=r"expected a batch of shape \(N, 128, 128, 3\).*got shape \(128, 128, 3\)"
    ):
        explainer.explain(np.zeros((128, 128, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"got shape \(1, 64, 64, 3\)"):
        explainer.explain(np.zeros((1, 64, 64, 3), dtype=np.float32))


def test_explainer_refuses_models_without_the_cam_head():
    backbone = build_compact_densenet((1, 1, 1, 1), 4, 64, include_top=False)
    pooled = keras.layers.GlobalMaxPooling2D(name="max_pool")(backbone.output)
    wrong_pool = keras.Model(
        backbone.inputs, keras.layers.Dense(1, activation="sigmoid", name="predictions")(pooled)
    )
    with pytest.raises(ModelFileError, match="expected GlobalAveragePooling2D over 'relu'"):
        Explainer(wrong_pool)
    averaged = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
    two_units = keras.Model(
        backbone.inputs, keras.layers.Dense(2, activation="softmax", name="predictions")(averaged)
    )
    with pytest.raises(ModelFileError, match=r"kernel \(\d+, 2\), activation softmax"):
        Explainer(two_units)
    no_stages = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3, name="c")])
    with pytest.raises(ModelFileError, match="has no layer for stage"):
        Explainer(no_stages)


# ------------------------------------------------------------------------------------------- top channels
def test_top_channels_ranks_by_mean_or_max():
    activation = np.zeros((4, 4, 4), dtype=np.float32)
    activation[..., 0] = 1.0  # mean 1, max 1
    activation[0, 0, 1] = 10.0  # mean 0.625, max 10
    activation[..., 2] = 0.5  # mean 0.5, max 0.5
    activation[..., 3] = 1.0  # ties with channel 0: the lower index comes first
    indices, maps = top_channels(activation, k=3, rank="mean")
    assert indices.tolist() == [0, 3, 1]
    np.testing.assert_array_equal(maps, np.moveaxis(activation[..., [0, 3, 1]], -1, 0))
    assert top_channels(activation, k=2, rank="max")[0].tolist() == [1, 0]
    assert top_channels(activation, k=16)[0].tolist() == [0, 3, 1, 2]  # k is capped at the channel count


def test_distinct_skips_near_duplicate_maps_and_mean_keeps_the_papers_rule():
    """rank="distinct": the mean order, minus maps that correlate above DISTINCT_R with a map already picked."""
    from densenet_interp.explain.maps import DISTINCT_R, RANKS

    ramp = np.linspace(0.0, 1.0, 64).reshape(8, 8)
    other = np.tile(np.linspace(1.0, 0.0, 8), (8, 1)) ** 3  # a different pattern, lower mean
    activation = np.stack(
        [
            ramp + 1.0,  # mean 1.5
            0.9 * ramp + 1.0 + 0.01 * np.eye(8),  # a near-copy of channel 0 (r ~ 1), mean 1.45
            other,  # mean ~0.31
            np.zeros((8, 8)),  # constant
            np.zeros((8, 8)) + 0.05,  # constant too: a duplicate of channel 3, whatever the level
        ],
        axis=-1,
    ).astype(np.float32)
    assert top_channels(activation, 2, "mean")[0].tolist() == [
        0,
        1,
    ]  # the paper's rule: the copy comes second
    assert top_channels(activation, 2, "distinct")[0].tolist() == [0, 2]
    assert top_channels(activation, 3, "distinct")[0].tolist() == [0, 2, 4]
    # too few distinct maps: the best skipped ones fill up, so k maps always come back
    assert top_channels(activation, 5, "distinct")[0].tolist() == [0, 2, 4, 1, 3]
    # exactly at the threshold a map still counts as distinct; just above, it is a duplicate
    b = np.random.default_rng(0).normal(size=(16, 16))
    b = (b - b.mean()) / np.linalg.norm(b - b.mean())
    n = np.random.default_rng(1).normal(size=(16, 16))
    n -= n.mean()
    n = (n - (n * b).sum() * b) / np.linalg.norm(n - (n * b).sum() * b)  # centred, orthogonal to b

    def mix(r: float) -> np.ndarray:  # channel 1 correlates exactly r with channel 0
        return np.stack([b + 10.0, r * b + np.sqrt(1 - r * r) * n + 9.0], axis=-1)

    assert top_channels(mix(DISTINCT_R - 0.01), 2, "distinct")[0].tolist() == [0, 1]
    assert top_channels(mix(DISTINCT_R + 0.01), 2, "distinct")[0].tolist() == [
        0,
        1,
    ]  # filled up: only 2 exist
    three = np.concatenate([mix(DISTINCT_R + 0.01), (np.eye(16) + 1.0)[..., None]], axis=-1)
    assert top_channels(three, 2, "distinct")[0].tolist() == [0, 2]
    assert top_channels(np.concatenate([mix(DISTINCT_R - 0.01), (np.eye(16) + 1.0)[..., None]], axis=-1), 2,
                        "distinct")[0].tolist() == [0, 1]  # fmt: skip
    assert RANKS[0] == "distinct"  # what the figures show by default


def test_the_cli_offers_the_engines_ranks():
    from densenet_interp.cli import build_parser
    from densenet_interp.explain.maps import RANKS

    explain = build_parser()._subparsers._group_actions[0].choices["explain"]
    rank = next(a for a in explain._actions if a.dest == "rank")
    assert tuple(rank.choices) == RANKS and rank.default == RANKS[0]


def test_top_channels_rejects_bad_arguments():
    with pytest.raises(
        ValueError, match=r"expected one image's activation of shape \(h, w, c\), got shape \(1, 2, 2, 3\)"
    ):
        top_channels(np.zeros((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="rank must be one of"):
        top_channels(np.zeros((2, 2, 3)), rank="median")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        top_channels(np.zeros((2, 2, 3)), k=0)


# --------------------------------------------------------------------------------------------- Grad-CAM
@pytest.fixture(scope="module")
def mixed_sign_model(tiny_model):
    """A model whose CAM has both signs: head weights +1 / -1 on alternate channels."""
    model = tiny_model(seed=2)
    head = model.get_layer("predictions")
    channels = head.kernel.shape[0]
    head.kernel.assign(np.where(np.arange(channels) % 2 == 0, 1.0, -1.0).astype(np.float32)[:, None])
    return model


def test_gradcam_at_the_final_layer_is_relu_of_cam_up_to_scale(mixed_sign_model, batch):
    # For GAP + Dense, d logit / d final[y, x, c] = w_c / (h w) everywhere, so Grad-CAM = ReLU(CAM) / (h w).
    explanation = Explainer(mixed_sign_model).explain(batch)
    maps = gradcam(mixed_sign_model, batch, "relu", target="logit")
    h, w = explanation.cam_lowres.shape[1:]
    expected = np.maximum(explanation.cam_lowres, 0.0) / (h * w)
    assert (expected > 0).any() and (explanation.cam_lowres < 0).any()  # the ReLU matters here
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-7)
    positive = expected.ravel() > 0
    assert np.corrcoef(maps.ravel()[positive], explanation.cam_lowres.ravel()[positive])[0, 1] > 0.9999
    # the probability target only rescales each image by sigmoid'(logit) > 0
    by_probability = gradcam(mixed_sign_model, batch, "relu", target="probability")
    p = explanation.probability
    np.testing.assert_allclose(by_probability, maps * (p * (1 - p))[:, None, None], rtol=1e-3, atol=1e-9)


def test_gradcam_plus_plus_follows_the_closed_form(mixed_sign_model, batch):
    explanation = Explainer(mixed_sign_model).explain(batch)
    maps = gradcam(mixed_sign_model, batch, "relu", method="gradcam++")
    h, w = explanation.cam_lowres.shape[1:]
    grads = explanation.cam_weights / (h * w)  # the same for every position and image
    final = explanation.final
    denominator = 2 * grads**2 + final.sum(axis=(1, 2)) * grads**3  # (N, C)
    alpha = np.where(denominator != 0, grads**2 / np.where(denominator != 0, denominator, 1), 0)
    weights = (h * w) * alpha * np.maximum(grads, 0)
    expected = np.maximum(np.einsum("nhwc,nc->nhw", final, weights), 0)
    assert expected.max() > 0
    np.testing.assert_allclose(maps, expected, rtol=1e-3, atol=1e-7)


def test_gradcam_on_any_layer_and_errors(model, batch):
    block3 = stage_layer_names(model)["block3"]
    assert gradcam(model, batch, block3).shape == (3, 8, 8)  # a stage: shares the explain model
    inner = gradcam(model, batch, "pool2_conv", method="gradcam++")  # not a stage: its own sub-model
    assert inner.shape == (3, 32, 32) and (inner >= 0).all()
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        gradcam(model, batch, "nope")
    with pytest.raises(ValueError, match="target must be one of"):
        gradcam(model, batch, "relu", target="loss")
    with pytest.raises(ValueError, match="method must be one of"):
        gradcam(model, batch, "relu", method="scorecam")


def test_explainers_are_shared_and_do_not_keep_models_alive(tiny_model):
    model = tiny_model(64)
    assert explainer_for(model) is explainer_for(model)
    assert explainer_for(model, "all") is explainer_for(model, "all")
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


# ------------------------------------------------------------------------------------ every-layer cache
def test_activation_cache_runs_one_pass_per_model_and_image(model, batch, explanation, four_d_layers):
    cache = ActivationCache(max_entries=2)
    first = cache.get(model, batch[:1])
    assert cache.forward_passes == 1
    assert cache.get(model, batch[0]) is first  # same content, (S, S, 3) accepted
    assert cache.forward_passes == 1
    expected = four_d_layers(model)
    assert first.captured == expected and "pool3_conv" in expected  # every 4-D layer, not only stages
    np.testing.assert_allclose(
        first.activations["conv1_relu"][0], explanation.stages["initial_conv"][0], atol=1e-5
    )
    np.testing.assert_allclose(first.cam[0], explanation.cam[0], atol=1e-5)
    assert float(first.probability[0]) == pytest.approx(float(explanation.probability[0]), abs=1e-6)
    assert float(first.logit[0]) == pytest.approx(float(explanation.logit[0]), abs=1e-5)
    cache.get(model, batch[1:2])
    cache.get(model, batch[2:3])  # evicts the least recently used entry (image 0)
    assert cache.forward_passes == 3 and len(cache) == 2
    cache.get(model, batch[:1])
    assert cache.forward_passes == 4
    with pytest.raises(ValueError, match=r"expected one image \(batch of 1\), got a batch of 2"):
        cache.get(model, batch[:2])


def test_cache_keeps_derived_maps_with_the_entry(model, batch):
    cache = ActivationCache()
    calls = []

    def compute(explainer, explanation):
        calls.append(explainer.layers)
        return -explanation.cam[0]

    first = cache.derived(model, batch[:1], "negated", compute)
    assert cache.derived(model, batch[0], "negated", compute) is first
    assert calls == ["all"] and cache.derived_computations == 1 and cache.forward_passes == 1
    np.testing.assert_array_equal(first, -cache.get(model, batch[:1]).cam[0])


# ------------------------------------------------------------------------------------ one engine, two layer sets
def test_the_layer_sets_share_one_capture_and_one_cam(model, batch, explanation):
    every = explainer_for(model, "all")
    assert set(explanation.captured) < set(every.captured)  # the stages and the final maps, and the rest
    assert explanation.captured == list(explanation.layer_names.values())  # model order: stages, then final
    full = every.explain(batch)
    assert full.layer_names == explanation.layer_names
    for name in explanation.captured:
        np.testing.assert_allclose(full.activations[name], explanation.activations[name], atol=1e-5)
    np.testing.assert_allclose(full.cam, explanation.cam, atol=1e-5)
    with pytest.raises(ValueError, match=r"layers must be one of \('stages', 'all'\), got 'some'"):
        explainer_for(model, "some")


def test_iter_explanations_batches_arrays_and_lazy_iterables(explainer, batch):
    images_u8 = np.clip(batch[..., 0], 0, 255).astype(np.uint8)
    whole = explainer.explain(np.repeat(images_u8[..., None].astype(np.float32), 3, axis=-1))
    batches = list(iter_explanations(explainer, images_u8, batch_size=2))
    assert [(start, len(part)) for start, part in batches] == [(0, 2), (2, 1)]
    np.testing.assert_allclose(np.concatenate([p.cam for _, p in batches]), whole.cam, atol=1e-5)
    pulled = []

    def lazy():
        for image in images_u8:
            pulled.append(len(pulled))
            yield image

    stream = iter_explanations(explainer, lazy(), batch_size=2)
    start, first = next(stream)
    assert (start, len(first), len(pulled)) == (0, 2, 2)  # a batch is explained as soon as it is full
    assert [start for start, _ in stream] == [2] and list(iter_explanations(explainer, [], 4)) == []
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        next(iter_explanations(explainer, images_u8, 0))


# -------------------------------------------------------------------------------------------- the registry
def test_registered_methods_give_maps_at_the_input_size(explainer, explanation):
    assert list(METHODS)[:4] == ["cam", "gradcam", "gradcam++", "random"]
    for name, method in METHODS.items():
        maps = method(explainer, explanation, seed=0)
        assert maps.shape == explanation.cam.shape and maps.dtype == np.float32, name
    np.testing.assert_array_equal(METHODS["cam"](explainer, explanation), explanation.cam)
    np.testing.assert_array_equal(
        METHODS["random"](explainer, explanation, seed=3),
        np.random.default_rng(3).uniform(size=explanation.cam.shape).astype(np.float32),
    )


def test_distinct_tops_up_with_just_enough_skipped_maps():
    """Too few distinct maps: the best skipped ones fill up to k, and no more."""
    rng = np.random.default_rng(1)
    base = rng.random((8, 8))
    copies = [base * (1.0 + 0.01 * i) + 5.0 - i for i in range(4)]  # four near-copies, mean order 0..3
    other = rng.random((8, 8))  # one distinct map, the weakest by mean
    activation = np.stack(copies + [other], axis=-1)
    indices, maps = top_channels(activation, 3, "distinct")
    assert indices.tolist() == [0, 4, 1] and maps.shape == (3, 8, 8)


def test_a_map_is_constant_only_within_float_noise_of_its_own_scale():
    """A map counts as constant when its spread is below 1e-12 of its own largest value (at least of 1): a faint
    map beside a strong one keeps its shape, and two different faint maps are not copies."""
    import warnings

    from densenet_interp.explain.maps import _unit_maps, distinct_count

    rng = np.random.default_rng(3)
    faint_a, faint_b = rng.random((2, 6, 6)) * 1e-3
    strong = rng.random((6, 6)) * 1e10
    assert distinct_count(np.stack([faint_a, faint_b, strong])) == 3
    edge = np.zeros((4, 1, 2))
    edge[0, 0, 1] = 1.6e-12  # centred norm about 1.13e-12: just above the floor of 1e-12
    edge[1, 0, 1] = 1.2e-12  # about 0.85e-12: below it
    edge[2] = 1e6
    edge[2, 0, 1] += 1e-6  # spread 0.7e-6 against a floor of 1e-6 at this scale
    edge[3] = 1e6
    edge[3, 0, 1] += 2e-6  # 1.4e-6: above it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constant maps are not divided by their zero norm
        unit, constant = _unit_maps(edge)
    assert constant.tolist() == [False, True, True, False]
    np.testing.assert_array_equal(unit[constant], 0.0)
    np.testing.assert_allclose(np.linalg.norm(unit[~constant], axis=1), 1.0)


def test_top_channels_default_to_the_papers_16_and_ties_keep_channel_order():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 3, 40).astype(np.float32)  # 40 channels on three levels: many ties
    activation = np.broadcast_to(levels, (4, 4, 40)).copy()
    indices, _ = top_channels(activation)
    assert len(indices) == 16
    expected = [c for level in (2, 1, 0) for c in range(40) if levels[c] == level][:16]
    assert indices.tolist() == expected  # within a level, the lower channel first
    assert top_channels(activation, k=1)[0].tolist() == expected[:1]
