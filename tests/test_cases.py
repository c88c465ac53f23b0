"""The cases file (Figures 4-11), case images, candidate images for real MURA, and 'what this run shows'."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from densenet_interp.errors import DataError
from densenet_interp.evaluate.case_report import describe_run
from densenet_interp.explain import cases
from densenet_interp.profiles import get_profile

PAPER_MODEL_SETS = {
    4: "wrist_pretrained",
    5: "wrist_pretrained",
    6: "wrist_pretrained",
    7: "wrist_random",
    8: "all_pretrained",
    9: "finger_pretrained",
    10: "finger_pretrained",
    11: "all_pretrained",
}


def test_the_packaged_file_has_the_papers_eight_cases():
    loaded = cases.load_cases()
    assert [c.figure for c in loaded] == list(range(4, 12)) and [c.case for c in loaded] == list(range(1, 9))
    assert {c.figure: c.model_set for c in loaded} == PAPER_MODEL_SETS
    by_figure = {c.figure: c for c in loaded}
    assert [c.figure for c in loaded if c.crop_frame] == [11]
    assert (
        by_figure[5].phantom_case
        == by_figure[7].phantom_case
        == by_figure[8].phantom_case
        == "wrist_screw_legend"
    )
    assert by_figure[10].phantom_case == by_figure[11].phantom_case == "fingertip_misaligned_frame"
    assert by_figure[6].paper_prediction == "normal"  # the paper's false negative
    assert by_figure[5].paper_cam_focus == "legend" and by_figure[10].paper_cam_focus == "frame"
    assert "shifted scaphoid" in by_figure[6].paper_caption and "cropped image" in by_figure[11].paper_caption
    assert all(c.mura_path is None and c.mura_note and c.label == 1 for c in loaded)
    assert cases.get_case(4).stem == "figure04" and cases.get_case("11").title.startswith("Case 8")
    with pytest.raises(ValueError, match="no case for figure 3"):
        cases.get_case(3)


def _write_cases(path, **changes):
    document = json.loads(cases.CASES_FILE.read_text())
    document["cases"][0].update(changes)
    path.write_text(json.dumps(document))
    return path


def test_malformed_cases_files_are_refused_with_the_entry_and_problem(tmp_path):
    with pytest.raises(DataError, match=r"entry 1 \(figure 4\): model_set is 'wrist'; expected one of"):
        cases.load_cases(_write_cases(tmp_path / "a.json", model_set="wrist"))
    with pytest.raises(DataError, match=r"crop_frame is 'yes'; expected <class 'bool'>"):
        cases.load_cases(_write_cases(tmp_path / "b.json", crop_frame="yes"))
    with pytest.raises(DataError, match=r"unknown keys \['colour'\]"):
        cases.load_cases(_write_cases(tmp_path / "c.json", colour="red"))
    with pytest.raises(DataError, match=r"figure numbers repeat"):
        cases.load_cases(_write_cases(tmp_path / "d.json", figure=5))
    (tmp_path / "e.json").write_text("{oops")
    with pytest.raises(DataError, match=r"e.json:1: not valid JSON"):
        cases.load_cases(tmp_path / "e.json")
    with pytest.raises(DataError, match="cases file not found"):
        cases.load_cases(tmp_path / "missing.json")


def test_paper_profile_reads_the_chosen_mura_image(tmp_path, monkeypatch):
    paper = get_profile("paper")
    with pytest.raises(DataError, match="figure 4 has no MURA image yet.*set its mura_path"):
        cases.case_image(cases.get_case(4), paper, mura_root=tmp_path)
    relative = "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/image1.png"
    (tmp_path / relative).parent.mkdir(parents=True)
    Image.fromarray(np.full((30, 20), 9, dtype=np.uint8)).save(tmp_path / relative)
    monkeypatch.setenv(cases.CASES_ENV, str(_write_cases(tmp_path / "mine.json", mura_path=relative)))
    case = cases.get_case(4)
    for root in (tmp_path, tmp_path / "MURA-v1.1"):  # the folder with MURA-v1.1, or MURA-v1.1 itself
        image, annotation = cases.case_image(case, paper, mura_root=root)
        assert image.shape == (30, 20) and image.dtype == np.uint8 and annotation is None
    with pytest.raises(DataError, match="no MURA folder given"):
        cases.case_image(case, paper)


def test_candidate_images_by_outcome_most_confident_first():
    predictions = pd.DataFrame(
        {
            "path": [f"img{i}.png" for i in range(7)],
            "body_part": ["XR_WRIST"] * 6 + ["XR_FINGER"],
            "study_key": range(7),
            "patient": range(7),
            "label": [1, 1, 1, 0, 0, 1, 1],
            "probability": [0.7, 0.95, 0.2, 0.6, 0.1, 0.4, 0.99],
        }
    )
    tp = cases.candidate_images(predictions, "wrist", "TP")
    assert tp["path"].tolist() == ["img1.png", "img0.png"] and tp["confidence"].tolist() == [0.95, 0.7]
    fn = cases.candidate_images(predictions, "XR_WRIST", "FN")
    assert fn["path"].tolist() == ["img2.png", "img5.png"]
    assert fn["confidence"].tolist() == pytest.approx([0.8, 0.6])
    assert cases.candidate_images(predictions, "wrist", "FP")["path"].tolist() == ["img3.png"]
    assert cases.candidate_images(predictions, "wrist", "TN")["path"].tolist() == ["img4.png"]
    with pytest.raises(ValueError, match="unknown outcome 'TT'"):
        cases.candidate_images(predictions, "wrist", "TT")
    with pytest.raises(ValueError, match="unknown body part 'knee'"):
        cases.candidate_images(predictions, "knee", "TP")
    with pytest.raises(
        ValueError, match=r"expected at least \['body_part', 'label', 'path', 'probability'\]"
    ):
        cases.candidate_images(predictions.drop(columns="probability"), "wrist", "TP")


# --------------------------------------------------------------------------------- "what this run shows"
@pytest.fixture()
def box_phantom(monkeypatch):
    """A stand-in ``phantom.masks_for`` that draws the annotation's boxes (fractions of H, W) at any size,
    so the alignment logic is tested whatever the real generator draws."""

    def masks_for(annotation, size):
        height, width = size
        masks = {}
        for name, (top, bottom, left, right) in annotation["boxes"].items():
            mask = np.zeros((height, width), dtype=bool)
            mask[round(top * height) : round(bottom * height), round(left * width) : round(right * width)] = (
                True
            )
            masks[name] = mask
        return masks

    module = types.ModuleType("densenet_interp.phantom")
    module.masks_for = masks_for
    monkeypatch.setitem(sys.modules, "densenet_interp.phantom", module)
    return masks_for


def test_masks_follow_the_image_through_resize_and_augmentation(box_phantom):
    from densenet_interp.data.augment import augment_for_display
    from densenet_interp.data.images import resize_square

    annotation = {"label": 1, "shape": (200, 160), "boxes": {"lesion": (0.2, 0.35, 0.6, 0.8)}}
    image = np.where(box_phantom(annotation, (200, 160))["lesion"], 250, 10).astype(np.uint8)
    shown = augment_for_display(resize_square(image, 64), seed=7)
    masks = cases.aligned_masks(cases.get_case(4), annotation, (200, 160), 64, augmented_seed=7)
    bright = shown > 128
    assert (bright & masks["lesion"]).sum() >= 0.85 * bright.sum()
    assert (bright & masks["lesion"]).sum() >= 0.85 * masks["lesion"].sum()
    assert not (masks["lesion"] & masks["background"]).any()


def test_frame_crop_for_masks_comes_from_the_frame_itself(box_phantom, monkeypatch):
    ring = np.zeros((200, 200), dtype=bool)  # a 2 px frame line, inner edge at 12 and 188
    ring[10:12, 10:190] = ring[188:190, 10:190] = ring[10:190, 10:12] = ring[10:190, 188:190] = True
    anatomy = np.zeros((200, 200), dtype=bool)
    anatomy[60:140, 60:140] = True
    fake = {"frame": ring, "anatomy": anatomy}
    monkeypatch.setattr(sys.modules["densenet_interp.phantom"], "masks_for", lambda annotation, size: fake)
    uncropped = cases.aligned_masks(cases.get_case(10), {"label": 1}, (200, 200), 64)  # figure 10 keeps it
    assert uncropped["frame"].any() and uncropped["anatomy"].mean() == pytest.approx(0.16, abs=0.02)
    cropped = cases.aligned_masks(cases.get_case(11), {"label": 1}, (200, 200), 64)  # figure 11 crops it
    assert "frame" not in cropped  # no frame pixel survives the crop
    # crop_frame's box: inside the line (12..188) less its 2 px margin = 172 px, of which the anatomy is 80
    assert cropped["anatomy"].mean() == pytest.approx((80 / 172) ** 2, abs=0.03)


def test_describe_run_compares_with_the_paper(box_phantom, fake_explanation):
    annotation = {
        "label": 1,
        "shape": (128, 128),
        "boxes": {"lesion": (0.0, 0.25, 0.0, 0.25), "anatomy": (0.0, 0.9, 0.0, 0.9)},
    }
    explanation = fake_explanation(n=1, size=64)
    explanation.cam[0] = 0.0
    explanation.cam[0, 2:10, 2:10] = 5.0  # the CAM sits on the lesion (top-left)
    text = describe_run(cases.get_case(4), explanation, 0, annotation, image_size=64)
    probability = float(explanation.probability[0])
    assert f"p = {probability:.3f}" in text and "label abnormal" in text
    assert "CAM peak** in: lesion, anatomy" in text and "(agrees)" in text
    assert "| CAM (positive part) |" in text and "| block4 (top 16, distinct) |" in text
    on_legend = describe_run(cases.get_case(5), explanation, 0, annotation, image_size=64)
    assert "pointed at the legend, but this image has no legend mask" in on_legend
    no_masks = describe_run(cases.get_case(6), explanation, 0, None)
    assert "predicted normal" in no_masks and "No ground-truth masks" in no_masks


def test_phantom_case_images_and_the_replayed_crop():
    from densenet_interp.data.frames import crop_frame

    mini = get_profile("mini")
    case = cases.get_case(11)
    image, annotation = cases.case_image(case, mini, mura_root="ignored for phantom profiles")
    assert image.dtype == np.uint8 and max(image.shape) == mini.phantom_long_side and annotation["label"] == 1
    _, box = crop_frame(image)
    assert box is not None
    given = cases.aligned_masks(case, annotation, image.shape, 64, augmented_seed=11, crop_box=box)
    replayed = cases.aligned_masks(
        case, annotation, image.shape, 64, augmented_seed=11
    )  # as notebook 40 calls it
    assert given.keys() == replayed.keys() and "frame" not in given and given["lesion"].any()
    for name, mask in given.items():
        np.testing.assert_array_equal(replayed[name], mask, err_msg=name)


def test_figures_10_and_11_share_their_augmentation():
    """The paper compares Figure 11 (cropped) with Figure 10 (as is): the same flip and rotation for both, so
    that only the crop differs; every other figure keeps its own draw."""
    import json

    assert cases.get_case(11).augmentation_seed == cases.get_case(10).augmentation_seed == 10
    assert len({cases.get_case(n).augmentation_seed for n in range(4, 11)}) == 7
    notebook = json.loads(
        (Path(__file__).resolve().parents[1] / "notebooks" / "40_case_figure.ipynb").read_text()
    )
    source = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert "augment_for_display(model_input_u8, seed=case.augmentation_seed)" in source
    assert "augmented_seed=case.augmentation_seed" in source


# ------------------------------------------------------------------------------ case images on real MURA
def _radiograph(metal_height: int = 0, framed: bool = False, seed: int = 0) -> np.ndarray:
    """A 320 x 256 radiograph-like image (a soft-tissue blob and a bone on a dark background); with
    ``metal_height`` a saturated plate that tall at its centre; ``framed``: a bright frame line around it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:320, 0:256].astype(np.float64)
    image = 15 + 150 * np.exp(-(((x - 128) / 46) ** 2 + ((y - 170) / 112) ** 2))
    image += 60 * np.exp(-(((x - 115) / 13) ** 2 + ((y - 153) / 96) ** 2)) + rng.normal(0, 6, image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if metal_height:
        image[170 - metal_height // 2 : 170 + metal_height // 2, 124:132] = 255
    if framed:
        image[30:33, 25:230] = image[287:290, 25:230] = 255
        image[30:290, 25:28] = image[30:290, 227:230] = 255
    return image


# (name, body part, label, p(abnormal), metal plate height, framed)
REAL_IMAGES = [
    ("a_tp_plain", "XR_WRIST", 1, 0.95, 0, False),
    ("b_tp_metal_small", "XR_WRIST", 1, 0.90, 40, False),
    ("c_tp_metal_large", "XR_WRIST", 1, 0.70, 100, False),
    ("d_fn_plain", "XR_WRIST", 1, 0.10, 0, False),
    ("e_fn_metal", "XR_WRIST", 1, 0.05, 60, False),
    ("f_tn", "XR_WRIST", 0, 0.20, 0, False),
    ("g_finger_framed_fp", "XR_FINGER", 0, 0.80, 0, True),
    ("h_finger_framed_tp", "XR_FINGER", 1, 0.60, 0, True),
    ("i_finger_tp", "XR_FINGER", 1, 0.99, 0, False),
]


@pytest.fixture
def real_mura(tmp_path):
    """A MURA-layout folder of the images above and the predictions of every model set on them."""
    rows = []
    for number, (name, part, label, probability, metal_height, framed) in enumerate(REAL_IMAGES):
        folder = f"valid/{part}/patient{number:05d}/study1_{'positive' if label else 'negative'}"
        path = tmp_path / "MURA-v1.1" / folder / f"{name}.png"
        path.parent.mkdir(parents=True)
        Image.fromarray(_radiograph(metal_height, framed, seed=number)).save(path)
        rows.append({"path": f"MURA-v1.1/{folder}/{name}.png", "body_part": part, "label": label,
                     "probability": probability})  # fmt: skip
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    for model_set in set(PAPER_MODEL_SETS.values()):
        pd.DataFrame(rows).to_csv(predictions / f"{model_set}.csv", index=False)
    return tmp_path / "MURA-v1.1", predictions


def _chosen(figure, real_mura, **kwargs):
    mura, predictions = real_mura
    return cases.auto_select(figure, mura, predictions, **kwargs)


def test_each_figure_gets_the_image_its_written_rule_names(real_mura):
    name = lambda figure: Path(_chosen(figure, real_mura)[0]).stem  # noqa: E731
    assert name(4) == "a_tp_plain"  # the most confident wrist TP without metal or frame
    assert name(5) == "c_tp_metal_large"  # the most metal among wrist TPs, not the most confident one
    assert name(6) == "d_fn_plain"  # the lowest p(abnormal) among FNs without metal
    assert name(7) == name(8) == name(5)  # the same image under other models
    assert name(9) == "i_finger_tp"  # no finger image has metal: relaxed to the most confident TP, said so
    assert "relaxed: no image met the evidence rule" in _chosen(9, real_mura)[2]
    assert name(10) == "h_finger_framed_tp"  # a framed TP beats a framed FP with higher p(abnormal)
    assert name(11) == name(10)
    path, label, text = _chosen(5, real_mura)
    assert label == 1 and text == cases.AUTO_RULES[5].text
    assert _chosen(7, real_mura)[2].startswith("Figure 5's image (the wrist true positive")


def test_a_rule_with_no_candidate_of_its_outcome_widens_and_says_so(real_mura):
    mura, predictions = real_mura
    table = pd.read_csv(predictions / "wrist_pretrained.csv")
    table.loc[table["label"] == 1, "probability"] = 0.9  # no wrist false negative any more
    table.to_csv(predictions / "wrist_pretrained.csv", index=False)
    path, _, text = cases.auto_select(6, mura, predictions)
    assert "relaxed: no image of these outcomes" in text and Path(path).stem == "a_tp_plain"


def test_missing_predictions_or_body_part_end_in_one_line(real_mura, tmp_path):
    mura, predictions = real_mura
    with pytest.raises(DataError, match="no predictions of this model set yet"):
        cases.auto_select(4, mura, tmp_path / "nowhere")
    table = pd.read_csv(predictions / "finger_pretrained.csv")
    table[table["body_part"] != "XR_FINGER"].to_csv(predictions / "finger_pretrained.csv", index=False)
    with pytest.raises(DataError, match="no XR_FINGER validation image to choose from"):
        cases.auto_select(10, mura, predictions)


def test_a_pin_beats_the_cases_file_which_beats_the_rule(real_mura, tmp_path):
    mura, predictions = real_mura
    paper = get_profile("paper")
    rows = {
        Path(r["path"]).stem: r["path"]
        for r in pd.read_csv(predictions / "wrist_pretrained.csv").to_dict("records")
    }
    auto = cases.select_case_image(cases.get_case(5), paper, mura, predictions)
    assert auto.path == rows["c_tp_metal_large"] and auto.source.startswith(
        "auto-selected: the wrist true positive"
    )
    assert auto.label == 1 and auto.annotation is None and auto.image.shape == (320, 256)

    document = json.loads(cases.CASES_FILE.read_text())
    for entry in document["cases"]:
        if entry["figure"] == 5:
            entry["mura_path"] = rows["a_tp_plain"]
    listed = tmp_path / "cases.json"
    listed.write_text(json.dumps(document))
    case5 = cases.get_case(5, listed)
    from_file = cases.select_case_image(case5, paper, mura, predictions, cases_path=listed)
    assert (from_file.path, from_file.source) == (rows["a_tp_plain"], "pinned in the cases file")
    follows = cases.select_case_image(cases.get_case(8, listed), paper, mura, predictions, cases_path=listed)
    assert (
        follows.path == rows["a_tp_plain"] and "Figure 5's image, pinned in the cases file" in follows.source
    )

    pins = f"5={rows['f_tn']}"
    pinned = cases.select_case_image(case5, paper, mura, predictions, pins=pins, cases_path=listed)
    assert (pinned.path, pinned.source, pinned.label) == (rows["f_tn"], "pinned: FIGURE5_IMAGE", 0)
    seven = cases.select_case_image(
        cases.get_case(7, listed), paper, mura, predictions, pins=pins, cases_path=listed
    )
    assert seven.path == rows["f_tn"] and seven.source == "pinned: FIGURE5_IMAGE (Figure 5's image)"
    own = cases.select_case_image(
        cases.get_case(7), paper, mura, predictions, pins=f"{pins};7={rows['d_fn_plain']}"
    )
    assert own.path == rows["d_fn_plain"]
    np.testing.assert_array_equal(pinned.image, np.asarray(Image.open(mura.parent / rows["f_tn"])))


@pytest.mark.parametrize("pins", ["5", "five=x.png", "5=", "=x.png"])
def test_malformed_pins_are_refused(pins):
    with pytest.raises(ValueError, match="expected FIGURE=IMAGE"):
        cases.parse_pins(pins)
    assert cases.parse_pins(" 5=a.png ; 10=/b c.png;") == {5: "a.png", 10: "/b c.png"}


def test_phantom_profiles_keep_their_named_case():
    chosen = cases.select_case_image(cases.get_case(5), get_profile("tiny"), None)
    assert chosen.path is None and chosen.source == "phantom case 'wrist_screw_legend'"
    assert chosen.annotation["case"] == "wrist_screw_legend"


def test_relaxing_keeps_what_the_figure_is_about(real_mura):
    """Hardware figures keep the metal and give up the outcome; Figure 6 keeps the miss and gives up 'no metal'."""
    mura, predictions = real_mura
    table = pd.read_csv(predictions / "wrist_pretrained.csv")
    stem = table["path"].map(lambda p: Path(p).stem)
    table.loc[stem.isin(["b_tp_metal_small", "c_tp_metal_large"]), "probability"] = 0.3  # now missed
    table.loc[stem == "d_fn_plain", "probability"] = 0.9  # now found
    table.to_csv(predictions / "wrist_pretrained.csv", index=False)
    path, _, text = cases.auto_select(5, mura, predictions)
    assert Path(path).stem == "c_tp_metal_large" and text.endswith(
        "relaxed: no image of these outcomes, any outcome taken"
    )
    path, _, text = cases.auto_select(6, mura, predictions)
    assert Path(path).stem == "e_fn_metal"  # the lowest p(abnormal) among the misses, metal or not
    assert text.endswith("relaxed: no image met the evidence rule")
