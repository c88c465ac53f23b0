"""The case figure: panels, colours, the arrays saved beside it, atomic writing (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from densenet_interp.explain.engine import STAGES
from densenet_interp.explain.figures import (
    GAP_COLOUR,
    activation_grid,
    case_arrays,
    case_figure,
    colour_table,
    overlay_cam,
    save_case_figure,
    signed_range,
    write_case_files,
)
from densenet_interp.explain.maps import top_channels


def test_overlay_cam_blends_jet_over_the_image():
    image = np.full((40, 40), 100, dtype=np.uint8)
    cam = np.zeros((4, 4), dtype=np.float32)
    cam[0, 0] = 1.0
    np.testing.assert_array_equal(overlay_cam(image, cam, 0.0), np.full((40, 40, 3), 100, dtype=np.uint8))
    heat = overlay_cam(image, cam, 1.0)
    assert heat.shape == (40, 40, 3)
    jet = colour_table("jet")
    np.testing.assert_array_equal(heat[0, 0], jet[255])  # the hot corner is dark red
    np.testing.assert_array_equal(heat[-1, -1], jet[0])  # the cold corner is dark blue
    half = overlay_cam(image, cam, 0.5)
    np.testing.assert_allclose(half[-1, -1], 0.5 * 100 + 0.5 * jet[0].astype(float), atol=1)
    with pytest.raises(ValueError, match=r"alpha \(CAM opacity\) must be in \[0, 1\], got 1.5"):
        overlay_cam(image, cam, 1.5)


def test_activation_grid_is_a_4x4_mosaic_of_the_top_channels_in_bwr():
    rng = np.random.default_rng(1)
    activation = rng.uniform(0, 1, (8, 8, 20)).astype(np.float32)
    activation[..., 7] += 5.0  # the strongest channel
    grid = activation_grid(activation, 16, "mean", tile=8, gap=2)
    assert (grid.rows, grid.cols) == (4, 4)
    assert grid.rgb.shape == (4 * 8 + 3 * 2, 4 * 8 + 3 * 2, 3)
    np.testing.assert_array_equal(grid.channels, top_channels(activation, 16, "mean")[0])
    assert grid.channels[0] == 7
    assert (grid.vmin, grid.vmax) == pytest.approx((0.0, activation[..., grid.channels].max()))
    bwr = colour_table("bwr")
    first_tile = grid.rgb[:8, :8]
    assert (first_tile[..., 0] > first_tile[..., 2]).all()  # the strong channel is red everywhere
    np.testing.assert_array_equal(grid.rgb[8:10, 0], np.array([GAP_COLOUR] * 2, dtype=np.uint8))
    # a non-negative panel runs 0..max: an exact zero is pure blue ("blue for near-zero activations")
    activation[2, 3, grid.channels[5]] = 0.0
    again = activation_grid(activation, 16, "mean", tile=8, gap=2)
    row, col = divmod(5, 4)
    np.testing.assert_array_equal(again.rgb[row * 10 + 2, col * 10 + 3], bwr[0])


def test_signed_maps_are_centred_at_zero():
    """A signed panel runs -m..+m: zero is white in 'bwr' and red only ever means positive."""
    assert signed_range(np.array([-4.6, -1.0, 0.0])) == (-4.6, 4.6)
    assert signed_range(np.array([-1.0, 3.0])) == (-3.0, 3.0)
    assert signed_range(np.array([0.5, 2.0])) == (0.0, 2.0)
    activation = np.zeros((4, 4, 2), dtype=np.float32)
    activation[..., 0] = np.linspace(-1.0, 3.0, 16).reshape(4, 4)
    grid = activation_grid(activation, 2, tile=4, gap=0)
    assert (grid.vmin, grid.vmax) == (-3.0, 3.0)
    white = colour_table("bwr")[128]
    np.testing.assert_allclose(
        grid.rgb[:4, 4:8].reshape(-1, 3), np.tile(white, (16, 1)), atol=2
    )  # all-zero map
    # a CAM that is negative everywhere (a confident "normal") shows no warm colour: nothing above the middle
    image = np.full((32, 32), 100, dtype=np.uint8)
    cam = -np.linspace(0.0, 4.6, 16, dtype=np.float32).reshape(4, 4)
    heat = overlay_cam(image, cam, 1.0)
    jet = colour_table("jet").astype(int)
    index = np.abs(heat.reshape(-1, 1, 3).astype(int) - jet[np.newaxis]).sum(axis=2).argmin(axis=1)
    assert index.max() <= 128 and index.min() == 0


def test_activation_grid_options():
    activation = np.arange(4 * 4 * 5, dtype=np.float32).reshape(4, 4, 5)
    grid = activation_grid(activation, 5, "max", tile=4, gap=1)
    assert (grid.rows, grid.cols) == (2, 3)  # 5 tiles: 3 columns, 2 rows, one empty cell
    assert (grid.rgb[5:, 10:] == GAP_COLOUR).all()
    per_map = activation_grid(activation, 2, scale="map", tile=4)
    assert np.isnan(per_map.vmin)
    bwr = colour_table("bwr")
    for tile in (per_map.rgb[:4, :4], per_map.rgb[:4, 6:10]):  # each map runs 0..its own max
        np.testing.assert_array_equal(tile[-1, -1], bwr[255])
        assert not (tile[0, 0] == bwr[0]).all()  # its minimum (above 0) is not the colour of zero
    chosen = activation_grid(activation, channels=np.array([3, 1]), tile=4)
    assert chosen.channels.tolist() == [3, 1]
    with pytest.raises(ValueError, match="scale must be one of"):
        activation_grid(activation, scale="global")


def test_case_figure_has_the_papers_panels(fake_explanation):
    explanation = fake_explanation()
    display = np.zeros((128, 128), dtype=np.uint8)
    outline = np.zeros((128, 128), dtype=bool)
    outline[40:60, 40:60] = True
    fig = case_figure(explanation, 1, display, title="Figure 4 · test", label=1, outline=outline)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [
        "(a) augmented input",
        "(b) class activation map",
        "(c) initial convolution",
        "(d) end of block 1",
        "(e) end of block 2",
        "(f) end of block 3",
        "(g) end of block 4",
    ]
    assert fig.get_suptitle() == "Figure 4 · test"
    for stage in STAGES:
        np.testing.assert_array_equal(
            fig.channels[stage], top_channels(explanation.stages[stage][1], 16, "distinct")[0]
        )
    text = "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)
    probability = float(explanation.probability[1])
    assert f"probability (abnormal): {probability:.3f}" in text and "label: abnormal (1)" in text
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_case_figure_options_and_index_check(fake_explanation):
    explanation = fake_explanation()
    fig = case_figure(explanation, 0, None, title="t", top_k=4, rank="max", input_caption="input")
    assert fig.axes[0].get_title() == "(a) input"
    text = "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "prediction:" in text and "label:" not in text  # no label given, none claimed
    assert all(len(channels) == 4 for channels in fig.channels.values())
    with pytest.raises(IndexError, match="image index 2 out of range for an explanation of 2 images"):
        case_figure(explanation, 2, None, title="t")


def test_save_case_figure_writes_png_pdf_and_the_shown_arrays(tmp_path, fake_explanation):
    explanation = fake_explanation()
    display = np.full((64, 64), 50, dtype=np.uint8)
    fig = case_figure(explanation, 1, display, title="t", rank="max")
    written = save_case_figure(
        fig, explanation, 1, display, tmp_path / "figs" / "figure04", extra={"label": 1}
    )
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "figure04.npz",
        "figure04.pdf",
        "figure04.png",
    ]
    assert written[".png"].read_bytes().startswith(b"\x89PNG") and written[".pdf"].read_bytes().startswith(
        b"%PDF"
    )
    with np.load(written[".npz"], allow_pickle=False) as arrays:
        assert arrays["cam"].shape == arrays["input"].shape[:2] == (64, 64)
        np.testing.assert_array_equal(arrays["input"], explanation.inputs[1])
        np.testing.assert_array_equal(arrays["display"], display)
        for stage in STAGES:
            channels = fig.channels[stage]  # ranked by max, as the figure shows them
            np.testing.assert_array_equal(arrays[f"{stage}_channels"], channels)
            np.testing.assert_array_equal(arrays[stage], explanation.stages[stage][1][..., channels])
            assert arrays[stage].shape[-1] == 16 and str(arrays[f"{stage}_layer"]) == f"layer_{stage}"
        assert float(arrays["probability"]) == pytest.approx(float(explanation.probability[1]))
        assert float(arrays["logit"]) == pytest.approx(float(explanation.logit[1]))
        assert int(arrays["label"]) == 1


def test_case_arrays_refuses_to_overwrite_and_stems_keep_dots(tmp_path, fake_explanation):
    explanation = fake_explanation()
    with pytest.raises(ValueError, match="extra key 'cam' would overwrite"):
        case_arrays(explanation, 0, extra={"cam": 1})
    fig = case_figure(explanation, 0, None, title="t")
    written = write_case_files(fig, None, tmp_path / "image1.v2", formats=(".png",))
    assert list(written) == [".png"] and sorted(p.name for p in tmp_path.iterdir()) == ["image1.v2.png"]


def test_case_figure_can_show_another_map_in_panel_b(fake_explanation):
    explanation = fake_explanation()
    display = np.full((64, 64), 50, dtype=np.uint8)
    default = case_figure(explanation, 0, display, title="t")
    assert default.axes[1].get_title() == "(b) class activation map"
    np.testing.assert_array_equal(
        default.axes[1].images[0].get_array(), overlay_cam(display, explanation.cam[0], 0.5)
    )
    other = np.zeros((64, 64), dtype=np.float32)
    other[:8, :8] = 1.0
    fig = case_figure(explanation, 0, display, title="t", saliency=other, saliency_title="Grad-CAM")
    assert fig.axes[1].get_title() == "(b) Grad-CAM"
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), overlay_cam(display, other, 0.5))
    text = "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "panel (b): Grad-CAM" in text


def test_case_figure_names_its_data_and_its_cam_grid(fake_explanation):
    """A case figure copied out of the project still says what data it shows, and how coarse its CAM is."""
    explanation = fake_explanation()
    fig = case_figure(explanation, 0, title="t", footer="Data: phantom MURA (synthetic), profile 'mini'")
    texts = [t.get_text() for t in fig.findobj(match=lambda o: hasattr(o, "get_text"))]
    assert any(t == "Data: phantom MURA (synthetic), profile 'mini'" for t in texts)
    h, w = explanation.cam_lowres.shape[1:]
    assert any(f"grid {h}x{w} at" in t and "the paper: 10x10 at 320 px" in t for t in texts)


def test_results_files_carry_their_data_label_and_the_same_figure_gives_the_same_bytes(
    tmp_path, fake_explanation
):
    """A figure or table copied alone still names its data: footer and metadata on figures, a column on tables."""
    import pandas as pd
    from PIL import Image

    from densenet_interp.paths import DATA_COLUMN, read_table, save_figure_atomic, write_csv_atomic

    label = "phantom MURA (synthetic), profile 'x'"
    fig = Figure()
    fig.subplots().plot([0, 1])
    save_figure_atomic(fig, tmp_path / "a.png", data_label=label)
    assert fig.get_supxlabel() == f"Data: {label}"
    with Image.open(tmp_path / "a.png") as image:
        assert image.text["Description"] == f"Data: {label}"
    save_figure_atomic(fig, tmp_path / "a.png", data_label=label)  # saved again: the footer is not doubled
    assert fig.get_supxlabel() == f"Data: {label}"
    for name in ("b.pdf", "c.pdf"):
        save_figure_atomic(fig, tmp_path / name, data_label=label)
    assert (tmp_path / "b.pdf").read_bytes() == (tmp_path / "c.pdf").read_bytes()
    assert b"/Subject (Data: phantom MURA" in (tmp_path / "b.pdf").read_bytes()

    case = case_figure(fake_explanation(), 0, None, title="t", footer=f"Data: {label}")
    written = write_case_files(case, None, tmp_path / "case", formats=(".png",), data_label=label)
    assert case.get_supxlabel() == f"Data: {label}"  # the case figure's own footer, not a second one
    with Image.open(written[".png"]) as image:
        assert label in image.text["Description"]

    frame = pd.DataFrame({"model_set": ["a", "b"], "accuracy": [0.5, 0.75]})
    write_csv_atomic(frame, tmp_path / "t.csv", index=False, data_label=label)
    assert pd.read_csv(tmp_path / "t.csv")[DATA_COLUMN].tolist() == [label, label]
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv"), frame)
    with pytest.raises(ValueError, match="already has a 'data' column"):
        write_csv_atomic(frame.assign(data=1), tmp_path / "u.csv", data_label=label)


def test_each_activation_panel_says_how_many_of_its_maps_are_distinct(fake_explanation):
    """A panel of 16 near-copies must not pass for 16 filters: the caption counts the distinct ones."""
    from densenet_interp.explain.maps import distinct_count

    ramp = np.linspace(0, 1, 64).reshape(8, 8)
    copies = np.stack([ramp * (1 + 0.01 * i) for i in range(5)])  # r = 1 with each other
    other = np.stack([ramp.T, np.zeros((8, 8)), np.full((8, 8), 3.0)])  # transposed; two constants (copies)
    assert distinct_count(copies) == 1
    assert distinct_count(np.concatenate([copies, other])) == 3
    fig = case_figure(fake_explanation(), 0, None, title="t")
    labels = [ax.get_xlabel() for ax in fig.axes if "maps distinct" in ax.get_xlabel()]
    assert len(labels) == 5 and all(label.endswith(" of 16 maps distinct") for label in labels)
