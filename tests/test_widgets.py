"""The explorer, headless: controls change the picture, sliders never rerun the model, errors stay on screen."""

from __future__ import annotations

import io
import statistics

import numpy as np
import pytest
from PIL import Image

from densenet_interp.app.widgets import Explorer, default_gallery
from densenet_interp.explain.maps import top_channels


def radiograph(seed: int, shape=(90, 70)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def models(tiny_model):
    return {"small": tiny_model(64), "deeper": tiny_model(64, blocks=(1, 2, 1, 1), seed=1)}


@pytest.fixture()
def explorer(models, tmp_path):
    path = tmp_path / "from_disk.png"
    Image.fromarray(radiograph(2)).save(path)
    images = {"first": radiograph(0), "second": radiograph(1), "from disk": path}
    return Explorer(models, images, image_size=64)


def test_first_view_runs_one_forward_pass(explorer, models, four_d_layers):
    assert explorer.forward_passes == 1
    assert explorer.png.startswith(b"\x89PNG") and explorer.view.value == explorer.png
    state = explorer.state()
    assert (state["model"], state["image"], state["layer"]) == ("small", "first", "conv1_relu")
    assert state["error"] is None and 0 <= state["probability"] <= 1
    assert explorer.layer_names == four_d_layers(models["small"])  # every 4-D layer, not only the stages
    assert len(explorer.layer_names) > 20


def test_moving_the_layer_slider_redraws_without_a_forward_pass(explorer):
    pictures = {explorer.png}
    for name in [n for n in explorer.layer_names if n != "conv1_relu"][:7]:
        explorer.layer_control.value = name  # as a user dragging the slider
        assert explorer.state()["layer"] == name
        pictures.add(explorer.png)
    assert len(pictures) == 8  # every layer looks different
    assert explorer.forward_passes == 1


def test_channels_rank_and_opacity_change_the_picture_only(explorer, models):
    explorer.set(layer="conv2_block1_concat")
    before = explorer.png
    explorer.k_control.value = 4
    assert explorer.png != before and len(explorer.state()["channels"]) == 4
    explorer.rank_control.value = "max"
    images = explorer._inputs[("first", 64)][1]
    activation = explorer.cache.get(models["small"], images).activations["conv2_block1_concat"][0]
    assert explorer.state()["channels"] == top_channels(activation, 4, "max")[0].tolist()
    before = explorer.png
    explorer.alpha_control.value = 0.9
    assert explorer.png != before
    assert explorer.forward_passes == 1


def test_the_map_dropdown_lists_the_registry_and_shows_the_chosen_map(explorer, models):
    from densenet_interp.explain.methods import METHODS

    assert list(explorer.method_control.options) == list(METHODS) and explorer.state()["method"] == "cam"
    cam_picture = explorer.png
    explorer.method_control.value = "gradcam"  # as a user picking another map
    assert explorer.state()["method"] == "gradcam" and explorer.png != cam_picture
    assert explorer.forward_passes == 1 and explorer.cache.derived_computations == 2  # cam, then gradcam
    explorer.set(layer="conv2_block1_concat", method="cam")
    explorer.set(method="gradcam")  # the map is kept with the image's entry: not computed again
    assert explorer.cache.derived_computations == 2 and explorer.forward_passes == 1
    explorer.set(method="cam", layer="conv1_relu")
    assert explorer.png == cam_picture  # back to the default picture
    with pytest.raises(ValueError, match=r"unknown map 'nope'; expected one of \['cam', 'gradcam'"):
        explorer.set(method="nope")


def test_images_and_models_cost_one_pass_each_then_come_from_the_cache(explorer, models, four_d_layers):
    explorer.set(image="second")
    assert explorer.forward_passes == 2
    explorer.set(image="from disk")  # read from its path on first use
    assert explorer.forward_passes == 3
    explorer.set(image="first")
    assert explorer.forward_passes == 3
    explorer.set(layer="conv3_block1_concat")
    explorer.model_control.value = "deeper"  # as a user picking another model set
    assert explorer.forward_passes == 4
    assert (
        explorer.layer_names == four_d_layers(models["deeper"])
        and "conv3_block2_concat" in explorer.layer_names
    )
    assert explorer.state()["layer"] == "conv3_block1_concat"  # kept: the other model has it too
    explorer.set(model="small", layer=-1 + len(four_d_layers(models["small"])))
    assert explorer.state()["layer"] == "relu" and explorer.forward_passes == 4


def test_models_load_from_paths(models, tmp_path):
    path = tmp_path / "model.keras"
    models["small"].save(path)
    explorer = Explorer({"saved": path}, {"one": radiograph(0)})
    assert explorer.state()["model"] == "saved" and explorer.forward_passes == 1


def test_bad_inputs(models, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    explorer = Explorer(
        {"small": models["small"], "missing": tmp_path / "missing.keras"},
        {"ok": radiograph(0), "broken": tmp_path / "broken.png"},
    )
    shown = explorer.png
    explorer.set(image="broken")
    assert "broken.png: not an image file" in explorer.state()["error"]
    assert "cannot show this" in explorer.message.value and explorer.png == shown
    explorer.set(image="ok")
    explorer.model_control.value = "missing"  # as a user choosing a model whose file is gone
    assert "missing.keras: model file not found" in explorer.state()["error"]
    with pytest.raises(ValueError, match=r"unknown image 'nope'; expected one of \['ok', 'broken'\]"):
        explorer.set(image="nope")
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        explorer.set(layer="nope")
    with pytest.raises(ValueError, match="k must be between 1 and 64"):
        explorer.set(k=0)
    with pytest.raises(ValueError, match="expected 128 px"):
        Explorer({"small": models["small"]}, {"ok": radiograph(0)}, image_size=128)
    with pytest.raises(ValueError, match="no models given"):
        Explorer({}, {"ok": radiograph(0)})


def test_redraws_after_the_first_are_fast(explorer):
    for i, name in enumerate(explorer.layer_names[:12]):
        explorer.set(layer=name, k=1 + i % 16)
    # The benchmark (benchmarks/redraw_time.py) holds the 100 ms target; this bound only catches a redraw
    # that does far more than recolour and encode (e.g. a forward pass or a matplotlib figure per move).
    assert statistics.median(explorer.redraw_seconds[1:]) < 0.25
    assert explorer.forward_passes == 1


def test_default_gallery_takes_validation_images_in_turn_over_parts_and_labels(tmp_path, write_small_mura):
    from densenet_interp.profiles import get_profile

    rows = [("train", "XR_WRIST", "patient00001", 1)]
    rows += [("valid", "XR_WRIST", f"patient1118{i}", i % 2) for i in range(4)]
    rows += [("valid", "XR_FINGER", "patient11190", 1)]
    studies = [
        (split, part, patient, f"study1_{'positive' if label else 'negative'}", 1)
        for split, part, patient, label in rows
    ]  # one study with one image each
    mura = write_small_mura(tmp_path, studies)
    gallery = default_gallery(get_profile("paper"), mura, n_validation=4)  # paper profile: no case paths set
    names = list(gallery)
    assert len(names) == 4
    assert [n.split()[1] for n in names] == ["finger", "wrist", "wrist", "wrist"]
    assert names[1].endswith("(normal)") and names[2].endswith("(abnormal)")
    assert all(path.is_file() for path in gallery.values())


def test_the_outline_switch_draws_the_ground_truth_contours_only_where_asked(models):
    """Off by default; on, the left panel shows each annotated region's boundary in its colour (and nothing
    else changes); images without an annotation disable the switch."""
    from densenet_interp.app.widgets import HEADER, OUTLINE_COLOURS, PANEL, contour

    lesion = np.zeros((90, 70), dtype=bool)
    lesion[30:60, 20:40] = True
    explorer = Explorer(
        models, {"annotated": radiograph(0), "plain": radiograph(1)}, image_size=64,
        outlines={"annotated": {"lesion": lesion, "legend": np.zeros((90, 70), dtype=bool)}},
    )  # fmt: skip
    plain_view = explorer.png
    assert explorer.state()["outline"] is False and explorer.state()["outlined"] == []
    explorer.set(outline=True)
    picture = np.asarray(Image.open(io.BytesIO(explorer.png)).convert("RGB"))
    before = np.asarray(Image.open(io.BytesIO(plain_view)).convert("RGB"))
    edge = contour(lesion, PANEL)
    left = picture[HEADER : HEADER + PANEL, :PANEL]
    assert (left[edge] == OUTLINE_COLOURS["lesion"]).all()  # every boundary pixel, in the lesion's colour
    unchanged = ~edge
    assert (left[unchanged] == before[HEADER : HEADER + PANEL, :PANEL][unchanged]).all()
    assert explorer.state()["outlined"] == ["lesion"]  # an empty region is not listed
    assert edge.sum() < 0.5 * lesion.mean() * PANEL * PANEL  # a contour, not the filled region
    explorer.set(image="plain")
    assert explorer.outline_control.disabled and explorer.state()["outlined"] == []
    assert explorer.forward_passes == 2


def test_the_phantom_gallery_carries_outlines_aligned_with_cropped_cases(tmp_path):
    from densenet_interp.profiles import get_profile

    gallery = default_gallery(get_profile("tiny"), None, n_validation=0)
    assert gallery.outlines and set(gallery.outlines) <= set(gallery)
    for name, masks in gallery.outlines.items():
        image = gallery[name]
        assert all(mask.shape == image.shape[:2] for mask in masks.values()), name  # the crop included
    assert any(masks["lesion"].any() for masks in gallery.outlines.values())


def test_the_banner_and_the_images_of_paper_smoke_are_the_phantoms(monkeypatch):
    """paper-smoke runs the real-MURA code path on generated data: its page must not say 'real radiographs'."""
    from densenet_interp.app.serve import radiograph_kind, resolve_settings
    from densenet_interp.paths import Layout
    from densenet_interp.profiles import get_profile

    assert radiograph_kind(get_profile("paper-smoke")) == "synthetic radiographs, not patients"
    assert radiograph_kind(get_profile("mini")) == "synthetic radiographs, not patients"
    assert radiograph_kind(get_profile("paper")) == "real radiographs (MURA)"
    for name in ("DENSENET_INTERP_PROFILE", "DENSENET_INTERP_MURA_DIR", "DENSENET_INTERP_DATA"):
        monkeypatch.delenv(name, raising=False)
    settings = resolve_settings("paper-smoke", "", "")
    assert settings.mura_dir == Layout.for_profile("paper-smoke").phantom_dir / "MURA-v1.1"
    assert resolve_settings("paper", "", "").mura_dir is None  # real MURA: the user names it
