"""Tests of the localisation measures, the patient bootstrap, the summaries and the claims report.

Fixtures are hand-made: square masks, CAMs built from them, a stub explainer that returns chosen CAMs, and
per-image tables whose numbers make each claim come out supported, contradicted or inconclusive.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from densenet_interp.evaluate import localisation as loc
from densenet_interp.evaluate import measures, stats
from densenet_interp.evaluate.claims import claims_markdown, claims_report
from densenet_interp.phantom.masks import REGIONS, resize_mask

SIZE = 32


def _box(top: int, bottom: int, left: int, right: int, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def _masks(lesion=None, legend=None, frame=None, anatomy=None, size: int = SIZE) -> dict[str, np.ndarray]:
    empty = np.zeros((size, size), dtype=bool)
    return {
        "lesion": empty if lesion is None else lesion,
        "legend": empty if legend is None else legend,
        "frame": empty if frame is None else frame,
        "anatomy": empty if anatomy is None else anatomy,
    }


# ---------------------------------------------------------------------------------------------- one image
def test_cam_equal_to_mask_puts_all_mass_inside():
    lesion = _box(4, 12, 8, 20)
    shares = measures.mass_shares(lesion.astype(np.float32), _masks(lesion=lesion))
    for mass in measures.MASSES:
        assert shares[f"lesion_share_{mass}"] == pytest.approx(1.0)
        assert shares[f"legend_share_{mass}"] == 0.0
    assert shares["lesion_chance"] == pytest.approx(lesion.mean()) and shares["legend_chance"] == 0.0


def test_uniform_cam_scores_the_area_share_and_negative_values_are_ignored():
    masks = _masks(lesion=_box(0, 8, 0, 8), legend=_box(28, 32, 0, 16), anatomy=_box(4, 28, 4, 28))
    cam = np.ones((SIZE, SIZE), dtype=np.float32)
    cam[:, :1] = -5.0  # negative evidence ("normal") carries no mass
    shares = measures.mass_shares(cam, masks)
    positive = cam > 0
    for region in ("lesion", "legend", "anatomy"):
        expected = (masks[region] & positive).sum() / positive.sum()
        assert shares[f"{region}_share_positive"] == pytest.approx(expected)
        assert shares[f"{region}_share_relative"] == pytest.approx(
            expected
        )  # the ones are all above the mean
        assert shares[f"{region}_chance"] == pytest.approx(masks[region].mean())


def test_positive_reading_is_undefined_without_positive_values_and_relative_is_not():
    lesion = _box(0, 4, 0, 4)
    cam = np.where(lesion, -1.0, -3.0)  # a "normal" image: negative everywhere, least negative on the lesion
    shares = measures.mass_shares(cam, _masks(lesion=lesion))
    assert math.isnan(shares["lesion_share_positive"]) and shares["positive_mass"] == 0.0
    assert shares["lesion_share_relative"] == pytest.approx(
        1.0
    )  # the lesion is where the map is above its mean
    flat = measures.mass_shares(-np.ones((SIZE, SIZE)), _masks(lesion=lesion))
    assert all(math.isnan(flat[f"lesion_share_{mass}"]) for mass in measures.MASSES)
    with pytest.raises(ValueError, match="mass must be one of"):
        measures.share_column("lesion", "absolute")


def test_mass_shares_reject_a_mask_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"mask 'legend' has shape \(16, 16\); expected the CAM's shape"):
        measures.mass_shares(np.ones((SIZE, SIZE)), {**_masks(), "legend": np.zeros((16, 16), bool)})


def test_pointing_game_counts_a_near_miss_only_within_the_tolerance():
    lesion = _box(10, 14, 10, 14)
    cam = np.zeros((SIZE, SIZE))
    cam[16, 12] = 1.0  # 3 px below the lesion's last row (13)
    assert measures.pointing_game(cam, lesion, tolerance_px=2)[0] == 0.0
    hit, chance = measures.pointing_game(cam, lesion, tolerance_px=3)
    assert hit == 1.0 and chance == pytest.approx((4 + 6) ** 2 / SIZE**2)
    assert measures.pointing_game(cam, lesion, tolerance_px=0) == (0.0, pytest.approx(lesion.mean()))
    assert all(math.isnan(v) for v in measures.pointing_game(cam, np.zeros_like(lesion), 2))


def test_grid_tolerance_is_one_cell_of_the_final_map():
    assert measures.grid_tolerance(128, 4) == 32
    assert measures.grid_tolerance(320, 10) == 32
    assert measures.grid_tolerance(64, 3) == 22  # rounded up
    with pytest.raises(ValueError, match="grid_size"):
        measures.grid_tolerance(8, 16)


def test_resize_mask_stretches_like_the_images():
    mask = np.zeros((20, 40), dtype=bool)
    mask[:, :20] = True  # left half
    small = resize_mask(mask, 10)
    assert small.shape == (10, 10) and small[:, :5].all() and not small[:, 5:].any()


def test_crop_masks_uses_the_frames_box_convention():
    masks = {"lesion": _box(10, 20, 5, 15)}
    cropped = loc.crop_masks(masks, (8, 24, 4, 30), (16, 26))  # (top, bottom, left, right)
    assert cropped["lesion"].shape == (16, 26) and cropped["lesion"].sum() == 100
    with pytest.raises(ValueError, match=r"expected \(top, bottom, left, right\)"):
        loc.crop_masks(masks, (8, 24, 4, 30), (26, 16))


# ---------------------------------------------------------------------------------------- the image table
class _StubExplainer:
    """Returns a fixed CAM per image (looked up by the image's mean grey value) on a 4x4 final grid."""

    def __init__(self, cams: dict[int, np.ndarray], probabilities: dict[int, float]):
        self.cams, self.probabilities, self.calls = cams, probabilities, 0

    def explain(self, batch: np.ndarray):
        self.calls += 1
        keys = [int(round(float(image[..., 0].mean()))) for image in batch]
        return SimpleNamespace(
            cam=np.stack([self.cams[k] for k in keys]),
            cam_lowres=np.zeros((len(batch), 4, 4)),
            probability=np.array([self.probabilities[k] for k in keys]),
        )


def test_localisation_table_measures_each_image_in_batches():
    lesion, legend = _box(0, 8, 0, 8), _box(24, 32, 24, 32)
    annotations = {
        "a.png": {"kind": "fracture", "masks": _masks(lesion=lesion, legend=legend)},
        "b.png": {"kind": "normal", "masks": _masks(legend=legend)},
        "c.png": {"kind": "hardware", "masks": _masks(lesion=lesion)},
    }
    explainer = _StubExplainer(
        {10: lesion.astype(float), 20: legend.astype(float), 30: legend.astype(float)},
        {10: 0.9, 20: 0.2, 30: 0.7},
    )
    images_u8 = np.stack([np.full((SIZE, SIZE), v, np.uint8) for v in (10, 20, 30)])
    images = pd.DataFrame(
        {"path": ["a.png", "b.png", "c.png"], "patient": ["p1", "p2", "p2"], "label": [1, 0, 1]}
    )
    table = loc.localisation_table(
        explainer, images_u8, annotations, images, model_set="m", batch_size=2,
        masks_for=lambda annotation, size: annotation["masks"],
    )  # fmt: skip
    assert explainer.calls == 2
    assert list(table["kind"]) == ["fracture", "normal", "hardware"]
    assert list(table["correct"]) == [True, True, True]
    assert (
        table["lesion_share_positive"].tolist()[0] == 1.0
        and table["legend_share_relative"].tolist()[1] == 1.0
    )
    assert table["lesion_share_positive"].tolist()[2] == 0.0
    assert table["pointing_hit"].tolist()[0] == 1.0 and math.isnan(table["pointing_hit"].tolist()[1])
    assert (table["tolerance_px"] == SIZE // 4).all()
    with pytest.raises(ValueError, match="no phantom annotation for 'd.png'"):
        images_d = images.assign(path=["a.png", "b.png", "d.png"])
        loc.localisation_table(explainer, images_u8, annotations, images_d, model_set="m",
                               masks_for=lambda annotation, size: annotation["masks"])  # fmt: skip


# ------------------------------------------------------------------------------------------------ bootstrap
def test_bootstrap_resamples_patients_and_is_deterministic():
    # patient A has 9 images of value 1, patient B one image of value 0: resampling images would almost
    # never give a mean of 0, resampling patients gives it whenever B is drawn twice (1 in 4).
    values = np.array([1.0] * 9 + [0.0])
    groups = np.array(["A"] * 9 + ["B"])
    mean, low, high = stats.bootstrap_mean(values, groups, n_boot=2000, seed=3)
    assert mean == pytest.approx(0.9)
    assert low == 0.0 and high == 1.0
    assert stats.bootstrap_mean(values, groups, n_boot=2000, seed=3) == (mean, low, high)
    _, low_images, _ = stats.bootstrap_mean(values, np.arange(10), n_boot=2000, seed=3)
    assert low_images > 0.5


def test_bootstrap_ignores_nan_and_handles_no_values():
    mean, low, high = stats.bootstrap_mean([1.0, np.nan, 3.0], ["a", "b", "c"], n_boot=200)
    assert mean == 2.0 and 1.0 <= low <= high <= 3.0
    assert all(math.isnan(v) for v in stats.bootstrap_mean([np.nan], ["a"]))
    with pytest.raises(ValueError, match="n_boot must be at least 1"):
        stats.bootstrap_mean([1.0], ["a"], n_boot=0)


# --------------------------------------------------------------------------------------- per-image fixtures
def _rows(model_set: str, n: int, seed: int = 0, **columns) -> pd.DataFrame:
    """A per-image table of ``n`` abnormal wrist hardware images (one patient each), defaults overridable."""
    rng = np.random.default_rng(seed)
    base = {
        "model_set": model_set,
        "path": [f"img{i}.png" for i in range(n)],
        "patient": [f"p{i}" for i in range(n)],
        "study_key": [f"s{i}" for i in range(n)],
        "body_part": "XR_WRIST",
        "kind": "hardware",
        "label": 1,
        "probability": 0.9,
        "correct": True,
        "positive_mass": 1.0,
        "lesion_share": 0.3 + rng.uniform(-0.02, 0.02, n),
        "lesion_chance": 0.05,
        "legend_share": 0.1 + rng.uniform(-0.02, 0.02, n),
        "legend_chance": 0.1,
        "frame_share": 0.0,
        "frame_chance": 0.0,
        "anatomy_share": 0.6 + rng.uniform(-0.02, 0.02, n),
        "anatomy_chance": 0.4,
        "pointing_hit": 1.0,
        "pointing_chance": 0.1,
        "tolerance_px": 8,
    }
    base.update(columns)
    frame = pd.DataFrame(base)
    for region in REGIONS:  # both readings carry the same numbers in these fixtures
        share = frame.pop(f"{region}_share")
        frame[f"{region}_share_relative"] = frame[f"{region}_share_positive"] = share
    return frame


def test_summarise_gives_a_row_per_region_with_intervals_and_kinds():
    per_image = pd.concat(
        [_rows("m", 20), _rows("m", 10, kind="fracture").assign(path=lambda f: f.path + "f")]
    )
    summary = loc.summarise(per_image, n_boot=200, seed=0)
    whole = summary[summary["subset"].isin(["all", "with lesion", "with legend"])]
    assert whole["region"].tolist() == ["lesion", "legend", "anatomy"] * 2 + [
        "pointing"
    ]  # no image has a frame
    assert whole["mass"].tolist() == ["relative"] * 3 + ["positive"] * 3 + ["argmax"]
    lesion = summary[(summary["region"] == "lesion") & (summary["subset"] == "with lesion")].iloc[0]
    assert lesion["n_images"] == 30 and lesion["share_low"] <= lesion["share"] <= lesion["share_high"]
    assert lesion["excess"] == pytest.approx(lesion["share"] - lesion["chance"])
    kinds = summary[summary["subset"].str.startswith("kind=")]
    assert set(kinds["subset"]) == {"kind=fracture", "kind=hardware"}
    assert set(kinds["region"]) == {"lesion", "pointing"} and len(kinds) == 3 * 2
    text = loc.localisation_markdown(summary, "fixture data")
    assert "### m" in text and "Data: fixture data." in text
    shown = summary.copy()
    shown.loc[shown["mass"] == "relative", "share"] = 0.99  # another mass's numbers must not be plotted
    fig = loc.plot_localisation(shown, mass="positive")
    shares, pointing = fig.axes
    assert (
        shares.get_ylabel() == "share of CAM mass (positive)"
        and pointing.get_ylabel() == "pointing-game hit rate"
    )
    positive = summary[(summary["region"] == "lesion") & (summary["mass"] == "positive")
                       & (summary["subset"] == "with lesion")].iloc[0]  # fmt: skip
    assert shares.patches[list(REGIONS).index("lesion")].get_height() == pytest.approx(positive["share"])
    hit = summary[(summary["region"] == "pointing") & (summary["subset"] == "with lesion")].iloc[0]
    assert pointing.patches[0].get_height() == pytest.approx(hit["share"])
    assert pointing.patches[1].get_height() == pytest.approx(hit["chance"])
    assert len(shares.containers) == 4  # both bar sets carry their intervals (bars + error bars each)


# ------------------------------------------------------------------------------------------------- claims
def _claims_fixture(wrist_legend: float, random_anatomy: float, cropped_anatomy: float, wrong: bool):
    n = 24
    wrist = _rows("wrist_pretrained", n, seed=1, legend_share=wrist_legend + np.linspace(-0.02, 0.02, n))
    all_ = _rows("all_pretrained", n, seed=2)
    random = _rows("wrist_random", n, seed=3, anatomy_share=random_anatomy + np.linspace(-0.02, 0.02, n))
    finger = _rows("finger_pretrained", 4, seed=4, body_part="XR_FINGER", kind="normal", label=0,
                   lesion_chance=0.0, lesion_share=0.0, probability=0.1)  # fmt: skip
    if wrong:  # two correctly classified abnormal images whose CAM sits on the legend
        for mass in measures.MASSES:
            wrist.loc[:1, [f"lesion_share_{mass}", f"legend_share_{mass}"]] = [0.01, 0.9]
    normals = _rows("wrist_pretrained", 6, seed=6, kind="normal", label=0, probability=0.2, lesion_chance=0.0,
                    lesion_share=0.0, pointing_hit=np.nan, pointing_chance=np.nan).assign(path=lambda f: f.path + "n")  # fmt: skip
    per_image = pd.concat([wrist, normals, all_, random, finger], ignore_index=True)
    as_is = _rows("finger_pretrained", 12, seed=5, frame_share=0.4, frame_chance=0.1, anatomy_share=0.3)
    restored = {f"anatomy_share_{m}": cropped_anatomy + np.linspace(-0.02, 0.02, 12) for m in measures.MASSES}
    cropped = as_is.assign(**restored, **{f"frame_share_{m}": 0.0 for m in measures.MASSES})
    frame_crop = pd.concat([as_is.assign(condition="as_is"), cropped.assign(condition="cropped")])
    return per_image, frame_crop.assign(cropped=True)


def test_claims_supported_when_the_numbers_say_so():
    per_image, frame_crop = _claims_fixture(
        wrist_legend=0.5, random_anatomy=0.3, cropped_anatomy=0.7, wrong=True
    )
    claims = claims_report(per_image, frame_crop, n_boot=300, seed=0)
    verdicts = {c.name: c.supported for c in claims}
    assert verdicts == {
        "1a legend bias (wrist-only)": True,
        "1b less legend bias (all extremities)": True,
        "2a anatomy (random init)": True,
        "2b lesion (random init)": None,  # lesion shares equal up to noise: no effect
        "3a frame draws attention (finger_pretrained)": True,
        "3b cropping restores anatomy (finger_pretrained)": True,
        "3c frame draws attention (all_pretrained)": None,  # no framed images explained by all_pretrained
        "3d cropping restores anatomy (all_pretrained)": None,
        "4 right for the wrong reasons": True,
    }
    assert all(c.verdict for c in claims)
    text = claims_markdown({"relative": claims}, "fixture data")
    assert text.count("**supported**:") == 6 and "fixture data" in text


def test_claims_contradicted_or_not_testable_when_the_numbers_say_so():
    per_image, frame_crop = _claims_fixture(
        wrist_legend=0.02, random_anatomy=0.9, cropped_anatomy=0.1, wrong=False
    )
    claims = {c.name: c for c in claims_report(per_image, frame_crop, n_boot=300, seed=0)}
    assert claims["1a legend bias (wrist-only)"].supported is False
    assert claims["1b less legend bias (all extremities)"].supported is False
    assert claims["2a anatomy (random init)"].supported is False
    assert claims["3b cropping restores anatomy (finger_pretrained)"].supported is False
    assert claims["4 right for the wrong reasons"].supported is False
    assert claims["4 right for the wrong reasons"].verdict.startswith("not observed: 0 of")
    untested = {c.name: c for c in claims_report(per_image, None, n_boot=50)}
    assert untested["3a frame draws attention (finger_pretrained)"].supported is None
    assert untested["3a frame draws attention (finger_pretrained)"].verdict.startswith("not testable")


# ------------------------------------------------------------------------------ with the real explain engine
@pytest.fixture(scope="module")
def tiny_explainer(tiny_profile_model):
    from densenet_interp.explain.engine import Explainer

    return Explainer(tiny_profile_model())


def _framed_radiograph(size: int = 96) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A dark image with a bright rectangular frame line 10 px inside the border and a bright 'bone'."""
    image = np.full((size, size), 20, dtype=np.uint8)
    frame = np.zeros((size, size), dtype=bool)
    frame[10:12, 10:-10] = frame[-12:-10, 10:-10] = frame[10:-10, 10:12] = frame[10:-10, -12:-10] = True
    anatomy = _box(30, 70, 40, 56, size)
    image[frame] = 230
    image[anatomy] = 160
    return image, _masks(lesion=_box(45, 55, 44, 52, size), frame=frame, anatomy=anatomy, size=size)


def test_frame_crop_table_remaps_the_masks_into_the_crop(tiny_explainer):
    from densenet_interp.data.frames import crop_frame

    image, masks = _framed_radiograph()
    images = pd.DataFrame({"path": ["f.png"], "abs_path": ["f.png"], "patient": ["p"], "label": [1]})
    annotations = {"f.png": {"kind": "misalignment", "frame": [[0, 0]]}}
    table = loc.frame_crop_table(
        tiny_explainer, images, annotations, 64, crop=crop_frame, read=lambda path: image,
        masks_for=lambda annotation, size: {k: resize_mask(v, size[0]) for k, v in masks.items()},
    )  # fmt: skip
    assert table["condition"].tolist() == ["as_is", "cropped"] and table["cropped"].all()
    as_is, cropped = table.iloc[0], table.iloc[1]
    assert as_is["frame_chance"] > 0.03 and cropped["frame_chance"] == 0.0  # the frame is cut away
    assert cropped["anatomy_chance"] > as_is["anatomy_chance"]  # the anatomy fills more of the crop
    assert (table["tolerance_px"] == 32).all()  # the tiny model's final map is 2x2 at 64 px
    assert loc.framed_images(images, annotations)["path"].tolist() == ["f.png"]
    assert loc.framed_images(images, {"f.png": {"frame": []}}).empty


def test_localisation_table_with_the_real_explainer(tiny_explainer):
    image, masks = _framed_radiograph(64)
    images = pd.DataFrame({"path": ["a", "b"], "patient": ["p", "q"], "label": [1, 0]})
    table = loc.localisation_table(
        tiny_explainer, np.stack([image, 255 - image]), {"a": {"kind": "fracture"}, "b": {"kind": "normal"}},
        images, model_set="tiny", masks_for=lambda annotation, size: masks,
    )  # fmt: skip
    assert len(table) == 2 and table["probability"].between(0, 1).all()
    shares = table[[measures.share_column(r, "relative") for r in REGIONS]].to_numpy()
    assert ((shares >= 0) & (shares <= 1)).all()  # the relative reading is defined for every non-flat CAM
    assert (table[measures.share_column("legend", "relative")] == 0).all()  # these images have no legend


def test_a_claim_on_fewer_patients_than_the_minimum_is_not_decided():
    per_image, frame_crop = _claims_fixture(
        wrist_legend=0.5, random_anatomy=0.3, cropped_anatomy=0.7, wrong=True
    )
    one_patient = frame_crop.assign(patient="p0")  # every framed image from the same patient
    claims = {c.name: c for c in claims_report(per_image, one_patient, n_boot=100)}
    for name in (
        "3a frame draws attention (finger_pretrained)",
        "3b cropping restores anatomy (finger_pretrained)",
    ):
        assert claims[name].supported is None
        assert (
            claims[name].verdict.startswith("not testable")
            and "fewer than 5 patients" in claims[name].verdict
        )


def test_enrichment_is_the_share_inside_over_the_area_share():
    """Enrichment = (map mass inside / total mass) / (region area / image area); 1 means no preference."""
    heat = np.zeros((4, 4))
    heat[0, 0], heat[3, 3] = 3.0, 1.0  # 3/4 of the mass in the top-left pixel
    corner = np.zeros((4, 4), bool)
    corner[:2, :2] = True  # a quarter of the image
    everywhere = np.ones((4, 4), bool)
    out = measures.enrichment(heat, {"corner": corner, "all": everywhere, "empty": np.zeros((4, 4), bool)})
    assert out == {
        "corner": pytest.approx(3.0),
        "all": pytest.approx(1.0),
    }  # a region without pixels is left out
    assert math.isnan(
        measures.enrichment(np.zeros((4, 4)), {"corner": corner})["corner"]
    )  # no mass: undefined
    with pytest.raises(ValueError, match="shape"):
        measures.enrichment(heat, {"corner": corner[:3]})


def test_pointing_game_edges_one_pixel_of_tolerance_and_masks_given_as_numbers():
    lesion = _box(10, 14, 10, 14)
    cam = np.zeros((SIZE, SIZE))
    cam[14, 12] = 1.0  # one pixel below the lesion
    assert measures.pointing_game(cam, lesion, tolerance_px=1) == (1.0, pytest.approx(36 / SIZE**2))
    assert measures.pointing_game(cam, lesion, tolerance_px=0)[0] == 0.0
    cam[14, 12], cam[12, 12] = 0.0, 1.0  # inside
    as_255 = lesion.astype(np.uint8) * 255  # a mask read from a PNG
    assert measures.pointing_game(cam, as_255, tolerance_px=0) == (1.0, pytest.approx(lesion.mean()))
    with pytest.raises(ValueError, match="tolerance_px"):
        measures.pointing_game(cam, lesion, tolerance_px=1.5)
    with pytest.raises(ValueError, match="2-D"):
        measures.pointing_game(np.zeros((2, 4, 4)), np.zeros((2, 4, 4), bool), 0)


def test_grid_tolerance_allows_a_one_cell_map_and_a_map_as_large_as_the_image():
    assert measures.grid_tolerance(128, 1) == 128
    assert measures.grid_tolerance(4, 4) == 1
    with pytest.raises(ValueError, match="grid_size"):
        measures.grid_tolerance(8, 0)


def test_masks_given_as_numbers_count_as_their_nonzero_pixels():
    cam = np.random.default_rng(0).random((SIZE, SIZE))
    as_bool = _masks(lesion=_box(2, 9, 3, 20), anatomy=_box(0, 30, 0, 30))
    as_255 = {name: mask.astype(np.uint8) * 255 for name, mask in as_bool.items()}
    assert measures.mass_shares(cam, as_255) == pytest.approx(measures.mass_shares(cam, as_bool))


def test_evidence_mass_is_float64_and_a_mass_below_float_noise_is_none():
    assert measures.evidence_mass(np.ones((2, 2), np.float32), "positive").dtype == np.float64
    masks = {"a": _box(0, 16, 0, 32), "b": _box(16, 32, 0, 32)}
    tiny = np.full((SIZE, SIZE), 1e-13)  # a mean per pixel below 1e-12: float noise, not evidence
    assert all(math.isnan(v) for v in measures.region_shares(tiny, masks).values())
    assert measures.region_shares(np.full((SIZE, SIZE), 1e-11), masks) == pytest.approx({"a": 0.5, "b": 0.5})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 on a map without mass
        assert all(math.isnan(v) for v in measures.region_shares(np.zeros((SIZE, SIZE)), masks).values())


def test_enrichment_sums_in_float64_whatever_the_maps_precision():
    """Maps come as float32 (the engine's output); their shares are summed in float64, so a float32 map and the
    same map in float64 give the same numbers, bit for bit."""
    heat = np.random.default_rng(2).random((SIZE, SIZE)).astype(np.float32) * 1000
    masks = {"a": _box(3, 20, 5, 29), "b": _box(0, 32, 0, 7)}
    assert measures.enrichment(heat, masks) == measures.enrichment(heat.astype(np.float64), masks)
