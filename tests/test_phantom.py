"""The phantom MURA generator: real MURA layout and CSV format, counts, determinism, masks, named cases."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densenet_interp.cli import main
from densenet_interp.errors import UserFacingError
from densenet_interp.phantom import (
    CASES,
    FIGURE1_CASES,
    DifficultyKnobs,
    generate_dataset,
    legend_probabilities,
    load_annotations,
    masks_for,
    render_case,
)
from densenet_interp.phantom import dataset as dataset_module
from densenet_interp.phantom.arm import build_limb
from densenet_interp.phantom.hardware import add_hardware
from densenet_interp.phantom.plan import IMAGES_PER_STUDY, MIN_STUDIES, TABLE2, cell_counts, plan_studies
from densenet_interp.phantom.radiograph import StudyRequest, render_study
from densenet_interp.phantom.render import attenuation, expose
from densenet_interp.phantom.solids import ball, path_lengths, rod
from densenet_interp.phantom.views import make_camera, pose, posed_landmark, project
from densenet_interp.profiles import BODY_PARTS

SCALE = 0.004
IMAGE_RE = re.compile(
    r"^MURA-v1\.1/(train|valid)/(XR_[A-Z]+)/patient(\d{5})/study(\d+)_(positive|negative)/image(\d+)\.png$"
)
STUDY_RE = re.compile(
    r"^MURA-v1\.1/(train|valid)/(XR_[A-Z]+)/patient(\d{5})/study(\d+)_(positive|negative)/,([01])$"
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny phantom dataset (scale 0.004, 64-pixel images), generated once for this module."""
    return generate_dataset(tmp_path_factory.mktemp("phantom"), scale=SCALE, seed=3, long_side=64, workers=1)


def _lines(path: Path) -> list[str]:
    text = path.read_text()
    assert text.endswith("\n") and "\r" not in text
    return text.splitlines()


def test_layout_and_csv_format_match_real_mura(tiny):
    assert tiny.name == "MURA-v1.1"
    studies: dict[str, list[str]] = {}
    for split in ("train", "valid"):
        image_lines = _lines(tiny / f"{split}_image_paths.csv")
        study_lines = _lines(tiny / f"{split}_labeled_studies.csv")
        assert IMAGE_RE.match(image_lines[0]) and STUDY_RE.match(study_lines[0]), "no header line expected"
        for line in study_lines:
            m = STUDY_RE.match(line)
            assert m, line
            assert m.group(1) == split
            assert m.group(6) == ("1" if m.group(5) == "positive" else "0"), "label must equal folder suffix"
            studies[line.rsplit(",", 1)[0]] = []
        for line in image_lines:
            m = IMAGE_RE.match(line)
            assert m and m.group(1) == split, line
            assert (tiny.parent / line).is_file(), line
            studies[line.rsplit("/", 1)[0] + "/"].append(m.group(6))
        # rows grouped by body part: each part is one contiguous block
        parts = [STUDY_RE.match(line).group(2) for line in study_lines]
        blocks = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
        assert len(blocks) == len(set(blocks)) == len(BODY_PARTS)
    for directory, numbers in studies.items():
        assert sorted(int(n) for n in numbers) == list(range(1, len(numbers) + 1)), directory


def test_patients_and_study_numbering(tiny):
    pids = defaultdict(set)
    by_pair = defaultdict(list)
    parts_of = defaultdict(set)
    for split in ("train", "valid"):
        for line in _lines(tiny / f"{split}_labeled_studies.csv"):
            _, part, pid, number, _, _ = STUDY_RE.match(line).groups()
            pids[split].add(int(pid))
            by_pair[(split, part, pid)].append(int(number))
            parts_of[(split, pid)].add(part)
    assert min(pids["train"]) == 1
    assert max(pids["train"]) < min(pids["valid"]), "valid patients continue after train, no overlap"
    assert max(pids["train"]) == len(pids["train"]), "train patients numbered without gaps"
    for numbers in by_pair.values():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), (
            "studies numbered per patient and body part"
        )
    assert any(len(n) >= 2 for n in by_pair.values()), "some patients have several studies of one part"
    assert all(len(n) <= 4 for n in by_pair.values())
    assert any(len(p) >= 2 for p in parts_of.values()), "some patients appear under several body parts"


def test_cell_counts_follow_scale_with_minimum():
    for scale in (SCALE, 0.1, 1.0):
        counts = cell_counts(scale)
        for part in BODY_PARTS:
            for s, split in enumerate(("train", "valid")):
                for label in (0, 1):
                    real = TABLE2[part][2 * s + label]
                    assert counts[split][part][label] == max(MIN_STUDIES, int(np.floor(real * scale + 0.5)))
    assert cell_counts(1.0)["train"]["XR_WRIST"] == (2134, 1326)
    assert cell_counts(0.1)["valid"]["XR_HUMERUS"] == (7, 7)


def test_generated_counts_match_plan(tiny):
    counts = cell_counts(SCALE)
    got = defaultdict(lambda: [0, 0])
    for split in ("train", "valid"):
        for line in _lines(tiny / f"{split}_labeled_studies.csv"):
            m = STUDY_RE.match(line)
            got[(split, m.group(2))][int(m.group(6))] += 1
    for split in ("train", "valid"):
        for part in BODY_PARTS:
            assert tuple(got[(split, part)]) == counts[split][part]


def test_images_per_study_follow_the_real_distribution():
    studies = plan_studies(0.3, seed=1)
    sizes = np.array([s.n_images for s in studies])
    assert set(sizes) <= set(IMAGES_PER_STUDY)
    real = np.array(list(IMAGES_PER_STUDY.values()))
    real_mean = (np.array(list(IMAGES_PER_STUDY)) * real).sum() / real.sum()
    assert abs(sizes.mean() - real_mean) < 0.08
    assert abs((sizes == 3).mean() - IMAGES_PER_STUDY[3] / real.sum()) < 0.03


def test_images_are_8bit_grayscale_with_requested_long_side(tiny):
    paths = _lines(tiny / "train_image_paths.csv")[::25]
    for rel in paths:
        with Image.open(tiny.parent / rel) as im:
            assert im.mode == "L"
            assert max(im.size) == 64
            assert 0.7 <= min(im.size) / max(im.size) <= 0.95
            arr = np.asarray(im)
        assert arr.dtype == np.uint8 and arr.ndim == 2 and arr.std() > 5


def test_annotations_cover_every_image(tiny):
    ann = load_annotations(tiny.parent)  # the parent folder works too
    paths = _lines(tiny / "train_image_paths.csv") + _lines(tiny / "valid_image_paths.csv")
    assert list(ann) == paths
    kinds = set()
    for path, a in ann.items():
        m = IMAGE_RE.match(path)
        assert a["split"] == m.group(1) and a["body_part"] == m.group(2)
        assert a["label"] == int(m.group(5) == "positive")
        assert a["kind"] in ("normal", "fracture", "hardware", "degenerative", "misalignment")
        assert isinstance(a["inverted"], bool) and len(a["shape"]) == 2
        if a["kind"] == "normal":
            assert a["lesion"] == [] and not a["lesion_visible"]
        assert ("text" in a["legend_kinds"]) == a["text_legend"]
        assert len(a["legend"]) == len(a["legend_texts"]) == len(a["legend_kinds"])
        assert (a["frame_box"] is None) == (a["frame"] == [])
        assert a["anatomy"], path
        kinds.add(a["kind"])
    assert kinds == {"normal", "fracture", "hardware", "degenerative", "misalignment"}
    assert any(a["inverted"] for a in ann.values()), "about 5 % of images are inverted"
    assert any(a["kind"] != "normal" and not a["lesion_visible"] for a in ann.values()), "some views hide it"
    manifest = (tiny / "phantom_manifest.json").read_text()
    assert '"scale": 0.004' in manifest and '"knobs"' in manifest


def test_same_seed_gives_same_bytes_for_any_number_of_workers(tmp_path):
    a = generate_dataset(tmp_path / "a", scale=SCALE, seed=5, long_side=40, workers=1)
    b = generate_dataset(tmp_path / "b", scale=SCALE, seed=5, long_side=40, workers=2)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    other = render_study(StudyRequest("XR_HAND", 1, 1, (6, 0), long_side=40))[0][0]
    same = render_study(StudyRequest("XR_HAND", 1, 1, (5, 0), long_side=40))[0][0]
    assert other.tobytes() != same.tobytes(), "another seed gives another image"


def test_refuses_to_overwrite_and_cleans_up_after_failure(tmp_path, monkeypatch):
    (tmp_path / "MURA-v1.1").mkdir()
    (tmp_path / "MURA-v1.1" / "keep.txt").write_text("x")
    with pytest.raises(UserFacingError, match="already exists"):
        generate_dataset(tmp_path, scale=SCALE, long_side=32, workers=1)

    calls = []
    real = dataset_module._render_and_write

    def interrupted(task):
        calls.append(task)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(dataset_module, "_render_and_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "other", scale=SCALE, long_side=32, workers=1)
    assert list((tmp_path / "other").iterdir()) == [], "an interrupted run leaves nothing behind"


def test_cli_generates_and_prints_a_summary(tmp_path, capsys):
    argv = [
        "phantom",
        str(tmp_path),
        "--scale",
        "0.004",
        "--long-side",
        "32",
        "--workers",
        "2",
        "--seed",
        "1",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(
        r"phantom: wrote \d+ studies, \d+ images to .*MURA-v1\.1 in [\d.]+ s \([\d.]+ MB\)", out
    ), out
    assert (tmp_path / "MURA-v1.1" / "phantom_manifest.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder left behind"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--scale", "0"], "scale must be > 0"),
        (["--long-side", "600"], "long side"),
        (["--long-side", "16"], "long side"),
        (["--legend-correlation", "1.5"], "legend correlation"),
    ],
)
def test_cli_rejects_bad_arguments_in_one_line(tmp_path, capsys, argv, needle):
    assert main(["phantom", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert not (tmp_path / "out" / "MURA-v1.1").exists()


def test_legend_probability_mapping():
    assert legend_probabilities(0.0, 0.7) == (0.7, 0.7)
    assert legend_probabilities(1.0, 0.7) == (1.0, 0.0)
    p_abn, p_norm = legend_probabilities(None, 0.7)
    assert p_abn == pytest.approx(0.76) and p_norm == pytest.approx(0.56)
    with pytest.raises(UserFacingError):
        legend_probabilities(-0.1, 0.7)
    with pytest.raises(UserFacingError):
        DifficultyKnobs(label_noise=2.0)


def test_strong_legend_correlation_puts_text_only_on_abnormal_images():
    flags = {0: [], 1: []}
    for i in range(6):
        label = i % 2
        for _, ann in render_study(
            StudyRequest("XR_HAND", label, 2, (9, i), long_side=48, legend_correlation=1.0)
        ):
            flags[label].append(ann["text_legend"])
    assert all(flags[1]) and not any(flags[0])


@pytest.mark.parametrize("name", list(CASES))
def test_named_cases_render_with_expected_masks(name):
    img, ann = render_case(name, long_side=128, seed=0)
    assert img.dtype == np.uint8 and img.ndim == 2 and max(img.shape) == 128
    masks = masks_for(ann)
    assert all(m.shape == img.shape and m.dtype == bool for m in masks.values())
    assert masks["anatomy"].mean() > 0.1
    if name == "wrist_normal":
        assert not masks["lesion"].any() and ann["kind"] == "normal"
    else:
        assert masks["lesion"].any(), "the lesion must be visible in the named case"
    if name == "wrist_screw_legend":
        assert masks["legend"].any() and "text" in ann["legend_kinds"] and ann["kind"] == "hardware"
    if name == "fingertip_misaligned_frame":
        assert masks["frame"].any() and ann["frame_box"] is not None and ann["kind"] == "misalignment"
    assert render_case(name, long_side=128, seed=0)[0].tobytes() == img.tobytes()


def test_figure1_cases_are_named_cases_in_panel_order():
    assert len(FIGURE1_CASES) == 6 and set(FIGURE1_CASES) <= set(CASES)
    assert FIGURE1_CASES[0] == "wrist_normal" and FIGURE1_CASES[3] == "wrist_fracture"
    with pytest.raises(UserFacingError, match="unknown case"):
        render_case("no_such_case")


def test_masks_for_scales_coordinates():
    _, ann = render_case("wrist_screw_legend", long_side=256, seed=1)
    h, w = ann["shape"]
    full = masks_for(ann)
    half = masks_for(ann, size=(h // 2, w // 2))
    for key in ("lesion", "legend", "anatomy"):
        assert half[key].shape == (h // 2, w // 2)
        assert half[key].mean() == pytest.approx(full[key].mean(), rel=0.15, abs=0.002), key
    ys, xs = np.nonzero(full["legend"])
    ys2, xs2 = np.nonzero(half["legend"])
    assert abs(ys2.mean() * 2 - ys.mean()) < 3 and abs(xs2.mean() * 2 - xs.mean()) < 3


def test_cases_command_writes_png_and_json(tmp_path, capsys):
    assert main(["cases", str(tmp_path), "--long-side", "64", "--seed", "0"]) == 0
    for name in CASES:
        assert (tmp_path / f"{name}.png").is_file() and (tmp_path / f"{name}.json").is_file()
    assert "cases:" in capsys.readouterr().out


def test_hardware_is_brighter_than_bone():
    rng = np.random.default_rng(0)
    limb = build_limb(rng, 1.0)
    add_hardware(limb, "plate:radius", rng, "ray3", "XR_WRIST")
    posture = pose(limb, "XR_WRIST", "PA", 0.0)
    cam = make_camera("XR_WRIST", "PA", rng, 256, posed_landmark(limb, posture, "wrist"), False)
    seen = project(limb, posture, cam)
    body, metal = attenuation(seen, cam.height, cam.width, cam.px_per_mm, cam.beam)
    img = expose(body, metal, rng)
    bones_only = project(limb, posture, cam)
    bones_only.soft, bones_only.lung, bones_only.metal = [], [], []
    bone_att, _ = attenuation(bones_only, cam.height, cam.width, cam.px_per_mm, cam.beam)
    bone = (bone_att > 0.05) & (metal == 0)
    assert (metal > 0).sum() > 50 and bone.sum() > 500
    assert img[metal > 0].mean() > img[bone].mean() + 0.15
    assert np.median(img[metal > 0]) > 0.9, "metal is near saturation"


def test_inverted_flag_flips_polarity():
    kwargs = dict(part="XR_ELBOW", label=0, n_images=1, entropy=(1, 2, 3), long_side=64)
    plain = render_study(StudyRequest(**kwargs, force_inverted=False))[0]
    flipped = render_study(StudyRequest(**kwargs, force_inverted=True))[0]
    assert not plain[1]["inverted"] and flipped[1]["inverted"]
    assert np.abs(flipped[0].astype(int) - (255 - plain[0].astype(int))).max() <= 1
    always = DifficultyKnobs(inverted_probability=1.0)
    img, ann = render_study(StudyRequest(**kwargs, knobs=always))[0]
    assert ann["inverted"] and np.median(img) > 128, "air is bright when inverted"


def test_hidden_views_and_subtlety_knobs():
    every_view = DifficultyKnobs(
        hidden_view_probability=0.0, hardware_hidden_probability=0.0, label_noise=0.0
    )
    never = DifficultyKnobs(hidden_view_probability=1.0, hardware_hidden_probability=1.0, label_noise=0.0)
    for i in range(3):
        req = dict(part="XR_WRIST", label=1, n_images=3, entropy=(2, i), long_side=48)
        shown = [a["lesion_visible"] for _, a in render_study(StudyRequest(**req, knobs=every_view))]
        hidden = [a["lesion_visible"] for _, a in render_study(StudyRequest(**req, knobs=never))]
        assert sum(hidden) <= 1, "at most the one guaranteed view shows the lesion"
        assert sum(shown) >= sum(hidden)


@pytest.mark.parametrize("part", BODY_PARTS)
def test_every_body_part_renders_all_views(part):
    for img, ann in render_study(StudyRequest(part, 0, 3, (4, BODY_PARTS.index(part)), long_side=96)):
        assert max(img.shape) == 96 and img.std() > 10
        assert 0.05 < masks_for(ann)["anatomy"].mean() <= 1.0


def test_path_lengths_match_analytic_chords():
    rows = np.arange(0, 40, dtype=np.float32)
    cols = np.arange(0, 40, dtype=np.float32)
    outer, core = path_lengths(ball((20.0, 20.0, 0.0), 10.0, core=0.5), rows, cols)
    d2 = (cols[None, :] + 0.5 - 20) ** 2 + (rows[:, None] + 0.5 - 20) ** 2
    np.testing.assert_allclose(outer, 2 * np.sqrt(np.maximum(100 - d2, 0)), atol=1e-3)
    np.testing.assert_allclose(core, 2 * np.sqrt(np.maximum(25 - d2, 0)), atol=1e-3)
    bar, _ = path_lengths(rod((5.0, 20.0, 0.0), (35.0, 20.0, 0.0), 6.0), rows, cols)
    assert bar[19, 20] == pytest.approx(2 * np.sqrt(36 - 0.25), abs=1e-3)
    assert bar[19, 2] == 0.0 and bar[10, 20] == 0.0
    cut = ball((20.0, 20.0, 0.0), 10.0).clipped(np.array([0.0, 0.0, 1.0]), 0.0)
    half, _ = path_lengths(cut, rows, cols)
    np.testing.assert_allclose(half, outer / 2, atol=1e-3)
