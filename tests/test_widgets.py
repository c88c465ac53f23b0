"""The explorer, headless: controls change the picture, sliders never rerun the model, errors stay on screen."""

from __future__ import annotations

import io
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densenet_interp.app.widgets import Explorer, default_gallery
from densenet_interp.explain.maps import top_channels
from dicom_support import cr_dataset, write_dicom


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
    from densenet_interp.app.widgets import OUTLINE_COLOURS, contour

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
    top, size = explorer.state()["panel"]["top"], explorer.state()["panel"]["size"]
    edge = contour(lesion, size)
    left = picture[top : top + size, :size]
    assert (left[edge] == OUTLINE_COLOURS["lesion"]).all()  # every boundary pixel, in the lesion's colour
    unchanged = ~edge
    assert (left[unchanged] == before[top : top + size, :size][unchanged]).all()
    assert explorer.state()["outlined"] == ["lesion"]  # an empty region is not listed
    assert edge.sum() < 0.5 * lesion.mean() * size * size  # a contour, not the filled region
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


# ----------------------------------------------------------------------------------------------------------
# What the page says, your own radiograph, downloads
# ----------------------------------------------------------------------------------------------------------
LONG_NAME = "valid wrist patient11185 study1_positive image3 (abnormal) with a very long name indeed " * 2


def _text(html_value: str) -> str:
    import html as html_module
    import re

    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", html_value)).split())


def test_probability_class_truth_and_model_are_always_said_in_full(models):
    """The readout wraps (it never cuts), and the picture's header wraps the same facts over its lines."""
    explorer = Explorer(
        {"wrist_pretrained": models["small"]}, {LONG_NAME: radiograph(0)}, image_size=64, truth={LONG_NAME: 1}
    )
    state, text = explorer.state(), " ".join(_text(explorer.readout.value).split())
    probability = state["probability"]
    assert f"p(abnormal) = {probability:.3f}" in text
    assert f"predicted {'abnormal' if probability >= 0.5 else 'normal'}" in text
    assert "ground truth abnormal" in text and "model set wrist_pretrained" in text
    assert " ".join(LONG_NAME.split()) in text  # the whole name
    assert "overflow-wrap: anywhere" in explorer.readout.value
    header = " ".join(state["header_lines"])
    assert len(state["header_lines"]) >= 4  # wrapped over several lines of the picture ...
    assert " ".join(LONG_NAME.split()) in " ".join(header.split())  # ... and nothing lost
    assert f"p(abnormal) = {probability:.3f}" in header
    explorer.set(image=LONG_NAME)
    assert "ground truth abnormal" in _text(explorer.readout.value)


def test_an_image_of_unknown_truth_says_so(explorer):
    assert "ground truth unknown" in " ".join(_text(explorer.readout.value).split())


def test_the_map_has_a_colour_bar_centred_at_zero():
    """A signed map (-1..3) is drawn on -3..3: its colour bar runs under the left panel, and the overlay's
    colour where the map is zero is the bar's middle ('jet' at 0.5), not the colour of the map's midrange."""
    from densenet_interp.app.widgets import compose_view
    from densenet_interp.explain.figures import CAM_CMAP, colour_table

    cam = np.zeros((8, 8), dtype=np.float32)
    cam[:, :4] = np.linspace(-1.0, 3.0, 8)[:, None]  # left half signed, right half exactly zero
    gray = np.zeros((64, 64), dtype=np.uint8)
    activation = np.random.default_rng(0).normal(size=(8, 8, 4)).astype(np.float32)
    picture, shown = compose_view(gray, cam, activation, k=4, rank="mean", alpha=1.0, header=["x"], scale=1)
    assert shown["map_range"] == (-3.0, 3.0)
    top, size = shown["panel"]["top"], shown["panel"]["size"]
    table = colour_table(CAM_CMAP)
    bar = picture[top + size + 6, :size]  # a row through the map's colour bar
    assert (bar == table[np.linspace(0, 255, size).astype(int)]).all()
    zero = picture[top + size // 2, size - 8]  # the right half of the panel, where the map is 0
    middle = table[127].astype(int)
    assert np.abs(zero.astype(int) - middle).max() <= 3, (zero, middle)  # 'jet' at 0.5: zero is the centre


def test_a_model_set_applied_to_another_body_part_gets_a_note(models):
    images = {"wrist": radiograph(0), "shoulder": radiograph(1), "unknown": radiograph(2)}
    parts = {"wrist": "XR_WRIST", "shoulder": "XR_SHOULDER"}
    explorer = Explorer(
        {"wrist_pretrained": models["small"], "all_pretrained": models["deeper"]}, images, image_size=64,
        body_parts=parts,
    )  # fmt: skip
    assert explorer.state()["note"] is None  # a wrist model on a wrist
    explorer.set(image="shoulder")
    note = explorer.state()["note"]
    assert "wrist_pretrained was trained on wrist radiographs only" in note and "shoulder radiograph" in note
    assert note in _text(explorer.readout.value)
    explorer.set(image="unknown")
    assert "body part of this image is not known" in explorer.state()["note"]
    explorer.set(model="all_pretrained", image="shoulder")
    assert explorer.state()["note"] is None  # trained on every body part
    assert explorer.body_part_note() is None


def _png_bytes(image: np.ndarray, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=kind)
    return buffer.getvalue()


def test_your_own_radiograph_png_jpeg_and_dicom_is_explained(models, explorer, tmp_path):

    first = explorer.forward_passes
    key = explorer.add_image_file("/home/someone/My wrist.png", _png_bytes(radiograph(5)))
    assert key == "your image: My wrist.png" and explorer.state()["image"] == key
    assert key in explorer.image_control.options and explorer.forward_passes == first + 1
    assert (
        explorer.add_image_file("My wrist.png", _png_bytes(radiograph(6))) == "your image: My wrist.png (2)"
    )
    assert explorer.add_image_file("scan.jpg", _png_bytes(radiograph(7), "JPEG")) == "your image: scan.jpg"
    assert "ground truth unknown" in " ".join(_text(explorer.readout.value).split())

    stored = radiograph(8).astype(np.uint16) * 16  # 12-bit values, MONOCHROME1: bone dark in the file
    path = write_dicom(
        tmp_path / "study.dcm", cr_dataset(stored, "MONOCHROME1", bits_stored=12, BodyPartExamined="SHOULDER")
    )
    explorer._trained_on["small"] = ("XR_WRIST",)
    key = explorer.add_image_file("no-suffix", path.read_bytes())  # DICOM by content, whatever the name
    assert explorer._body_parts[key] == "XR_SHOULDER"
    assert "shoulder radiograph" in explorer.state()["note"]
    shown = explorer._arrays["image"]
    from densenet_interp.data.images import read_radiograph, resize_square

    assert (shown == resize_square(read_radiograph(path), 64)).all()  # the project's DICOM reading (inverted)


def test_a_file_that_is_not_an_image_is_one_line_on_the_page(explorer):
    shown = explorer.png
    explorer._on_upload({"new": ({"name": "notes.png", "content": memoryview(b"not a picture at all")},)})
    assert explorer.message.value.startswith("<b>cannot show this:</b> notes.png: ")
    assert "tmp" not in explorer.message.value and "\n" not in explorer.message.value
    assert explorer.png == shown and "your image: notes.png" not in explorer.image_control.options
    assert explorer.upload_control.value == ()  # nothing kept; the same file can be chosen again


def test_the_view_downloads_as_png_pdf_and_arrays(models):
    explorer = Explorer(models, {"a b/c": radiograph(0)}, image_size=64, data_label="PHANTOM test data")
    explorer.set(layer=2, k=4)
    files = explorer.download_files()
    names = sorted(files)
    assert [Path(n).suffix for n in names] == [".npz", ".pdf", ".png"] and all("/" not in n for n in names)
    png = Image.open(io.BytesIO(files[names[2]]))
    assert png.info["Comment"] == "PHANTOM test data"
    shown = np.asarray(Image.open(io.BytesIO(explorer.png)).convert("RGB"))
    assert (np.asarray(png.convert("RGB")) == shown).all()  # the picture on screen, pixel for pixel
    assert files[names[1]].startswith(b"%PDF") and "PHANTOM test data".encode("utf-16-be") in files[names[1]]
    arrays = np.load(io.BytesIO(files[names[0]]))
    state = explorer.state()
    assert arrays["shown_activations"].shape == (*state["shape"][:2], 4) and arrays["image"].shape == (64, 64)
    assert list(arrays["channels"]) == state["channels"] and str(arrays["layer"]) == state["layer"]
    assert float(arrays["probability"]) == pytest.approx(state["probability"])
    assert str(arrays["data_label"]) == "PHANTOM test data"
    explorer.offer_downloads()
    assert explorer.downloads.value.count("<a download=") == 3 and "base64," in explorer.downloads.value
    explorer.set(k=5)
    assert explorer.downloads.value == ""  # a link must never download another view than the one shown


def test_a_download_after_a_failed_redraw_is_named_after_the_picture_it_holds(models, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    explorer = Explorer(models, {"good": radiograph(0), "broken": broken}, image_size=64)
    shown = explorer.png
    explorer.set(image="broken")  # cannot be shown: the picture stays the good image's
    assert explorer.last_error and explorer.png == shown
    files = explorer.download_files()
    assert all("_good_" in name for name in files), list(files)
    arrays = np.load(io.BytesIO(next(v for k, v in files.items() if k.endswith(".npz"))))
    assert str(arrays["image_name"]) == "good"


def test_your_radiograph_is_labelled_as_yours_not_as_the_dataset(models):
    explorer = Explorer(models, {"a": radiograph(0)}, image_size=64, data_label="PHANTOM MURA (synthetic)")
    key = explorer.add_image_file("mine.png", _png_bytes(radiograph(3)))
    assert explorer.state()["image"] == key
    files = explorer.download_files()
    label = Image.open(io.BytesIO(next(v for k, v in files.items() if k.endswith(".png")))).info["Comment"]
    assert label.startswith("your radiograph (not from the dataset)") and "PHANTOM MURA (synthetic)" in label
    explorer.set(image="a")
    assert explorer._label() == "PHANTOM MURA (synthetic)"


def test_an_odd_file_name_is_only_a_name(explorer):
    """A suffix the upload does not know, or a very long one, neither decides the reader nor breaks it."""
    key = explorer.add_image_file("scan." + "x" * 300, _png_bytes(radiograph(4)))  # a PNG, by content
    assert explorer.state()["image"] == key and explorer.last_error is None
