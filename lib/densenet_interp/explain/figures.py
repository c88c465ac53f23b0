"""The paper's case figure (Figures 4-11) and the image helpers it shares with the explorer.

A case figure has seven panels, lettered as in the paper's captions:

- (a) the (augmented) input image, (b) the class activation map in 'jet', upscaled and overlaid on the input
  (or another saliency method's map, :mod:`densenet_interp.explain.methods`, when one is passed);
- (c) the initial convolution and (d)-(g) the end of dense blocks 1-4, each a 4 x 4 grid of the 16 most
  activated feature maps (mean activation over space; max as an option) in 'bwr'.

Colour scaling, because the paper says only "blue for near-zero activations, red for significant features"
(:func:`signed_range`, one rule for every map):

- a map with no negative value (the ReLU outputs of the initial convolution, Grad-CAM) runs ``0..max``: blue
  is exactly zero, as the paper says;
- a signed map (the dense-block concatenations, the CAM) runs ``-m..+m`` with ``m`` its largest magnitude,
  centred at zero: white in 'bwr', the middle of 'jet'. Red therefore always means "positive", never "least
  negative": a CAM that is negative everywhere (a confident "normal") shows no red hot spot.
- activation panels: one range per panel over the maps shown, so that a weakly activated channel looks weaker
  than a strong one of the same panel (matplotlib's default, one range per map, would make every map look
  equally strong); ``scale="map"`` gives per-map ranges instead. Every range is on its colour bar.

Mosaics and overlays are composed with numpy (colour look-up tables, nearest-neighbour enlargement), so one
``imshow`` draws a whole panel; the explorer composes the same arrays without matplotlib. Figures are
``matplotlib.figure.Figure`` objects on the Agg canvas: no pyplot state.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

from ..models.inference import verdict
from ..paths import atomic_path, save_figure_atomic
from .engine import STAGES, Explanation
from .maps import DISTINCT_R, distinct_count, top_channels

CAM_CMAP = "jet"
ACTIVATION_CMAP = "bwr"
SCALES = ("panel", "map")
GAP_COLOUR = (64, 64, 64)

PANEL_TITLES = {
    "input": "(a) {input_caption}",
    "cam": "(b) class activation map",
    "initial_conv": "(c) initial convolution",
    "block1": "(d) end of block 1",
    "block2": "(e) end of block 2",
    "block3": "(f) end of block 3",
    "block4": "(g) end of block 4",
}


@lru_cache(maxsize=8)
def colour_table(name: str) -> np.ndarray:
    """A matplotlib colour map as a ``uint8 (256, 3)`` look-up table (fast colouring of whole arrays)."""
    return np.round(matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def signed_range(values: np.ndarray) -> tuple[float, float]:
    """The colour range of a map: ``(0, max)`` if it has no negative value, else ``(-m, m)``, ``m = max |value|``.

    Zero is then the bottom of the scale for non-negative maps and its centre for signed ones (see the module
    docstring); an all-zero map gives ``(0, 0)`` (drawn in the middle colour).
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (0.0, 0.0)
    low, high = float(finite.min()), float(finite.max())
    if low >= 0:
        return (0.0, high)
    magnitude = max(-low, abs(high))
    return (-magnitude, magnitude)


def _to_unit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` mapped linearly from ``low..high`` to ``0..1`` (clipped); a constant range maps to 0.5."""
    if not high > low:
        return np.full(values.shape, 0.5, dtype=np.float32)
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def colourise(unit: np.ndarray, cmap: str) -> np.ndarray:
    """Values in ``0..1`` -> ``uint8 (..., 3)`` colours of ``cmap``."""
    return colour_table(cmap)[np.round(unit * 255).astype(np.uint8)]


def _resize_float(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a float map (PIL 'F' mode, fast); identity when the size already matches."""
    if values.shape == (height, width):
        return values.astype(np.float32)
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def _gray_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(
            f"expected a uint8 image (H, W) or (H, W, 3), got {image.dtype} array of shape {image.shape}"
        )
    return np.repeat(image[..., np.newaxis], 3, axis=2) if image.ndim == 2 else image


def overlay_cam(
    image: np.ndarray,
    cam: np.ndarray,
    alpha: float = 0.5,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """The CAM in 'jet' blended over ``image``: ``uint8 (H, W, 3)`` = ``(1 - alpha) image + alpha jet(cam)``.

    ``cam`` (any size) is resized bilinearly to the image and scaled ``vmin..vmax`` (default:
    :func:`signed_range` of the CAM, zero at the centre of a signed map, see the module docstring). ``alpha`` is the CAM's opacity, 0 (image only) to 1 (CAM only).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (CAM opacity) must be in [0, 1], got {alpha}")
    rgb = _gray_rgb(image)
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f"expected a CAM of shape (h, w), got shape {cam.shape}")
    default_low, default_high = signed_range(cam)
    low = default_low if vmin is None else vmin
    high = default_high if vmax is None else vmax
    heat = colourise(_to_unit(_resize_float(cam, *rgb.shape[:2]), low, high), CAM_CMAP)
    blended = (1.0 - alpha) * rgb.astype(np.float32) + alpha * heat.astype(np.float32)
    return np.round(blended).astype(np.uint8)


@dataclass(frozen=True)
class ActivationGrid:
    """A mosaic of the top-k feature maps of one activation, coloured with 'bwr'.

    ``rgb``: ``uint8 (H, W, 3)`` mosaic, ``rows x cols`` tiles in rank order (row by row), separated by
    ``GAP_COLOUR``; ``channels``: the channel index of each tile; ``vmin``/``vmax``: the colour range (for
    ``scale="panel"``; NaN with ``scale="map"``, where each tile has its own).
    """

    rgb: np.ndarray
    channels: np.ndarray
    vmin: float
    vmax: float
    rows: int
    cols: int
    scale: str


def activation_grid(
    activation: np.ndarray,
    k: int = 16,
    rank: str = "distinct",
    *,
    scale: str = "panel",
    tile: int = 48,
    gap: int = 2,
    channels: np.ndarray | None = None,
) -> ActivationGrid:
    """The top-``k`` channels of one image's activation ``(h, w, c)`` as a 'bwr' mosaic (4 x 4 for k = 16).

    Maps are enlarged by whole pixels (nearest neighbour) to at least ``tile`` px so that coarse late-block
    maps stay legible and grid lines stay thin. ``channels`` overrides the ranking (to redraw a selection).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    activation = np.asarray(activation, dtype=np.float32)
    if channels is None:
        channels, maps = top_channels(activation, k, rank)
    else:
        channels = np.asarray(channels, dtype=np.int64)
        maps = np.moveaxis(activation[..., channels], -1, 0)
    count, height, width = maps.shape
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    if scale == "panel":
        vmin, vmax = signed_range(maps)
        unit = _to_unit(maps, vmin, vmax)
    else:
        vmin = vmax = float("nan")
        unit = np.stack([_to_unit(m, *signed_range(m)) for m in maps])
    coloured = colourise(unit, ACTIVATION_CMAP)  # (k, h, w, 3)
    factor = max(1, math.ceil(tile / max(height, width)))
    coloured = coloured.repeat(factor, axis=1).repeat(factor, axis=2)
    tile_h, tile_w = height * factor, width * factor
    mosaic = np.empty((rows * (tile_h + gap) - gap, cols * (tile_w + gap) - gap, 3), dtype=np.uint8)
    mosaic[:] = GAP_COLOUR
    for i in range(count):
        top, left = (i // cols) * (tile_h + gap), (i % cols) * (tile_w + gap)
        mosaic[top : top + tile_h, left : left + tile_w] = coloured[i]
    return ActivationGrid(mosaic, channels, vmin, vmax, rows, cols, scale)


class CaseFigure(Figure):
    """A case figure that remembers which channels each panel shows (``channels``), so that the arrays
    saved beside it hold exactly those maps; displays itself as PNG in notebooks (no pyplot needed)."""

    channels: dict[str, np.ndarray]

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _display_image(explanation: Explanation, index: int, input_display_u8: np.ndarray | None) -> np.ndarray:
    """The image for panels (a) and (b): the one given, else the model input itself (channel 0)."""
    if input_display_u8 is not None:
        return np.asarray(input_display_u8)
    return np.clip(np.round(explanation.inputs[index, ..., 0]), 0, 255).astype(np.uint8)


def _check_index(explanation: Explanation, index: int) -> None:
    if not 0 <= index < len(explanation):
        raise IndexError(f"image index {index} out of range for an explanation of {len(explanation)} images")


def _add_colour_bar(fig: Figure, ax, cmap: str, low: float, high: float, label: str) -> None:
    bar = fig.colorbar(
        ScalarMappable(Normalize(low, high), cmap), ax=ax, orientation="horizontal", fraction=0.05, pad=0.02
    )
    bar.ax.tick_params(labelsize=6)
    bar.set_label(label, fontsize=6)


def _info_text(
    explanation: Explanation, index: int, label: int | None, top_k: int, rank: str, scale: str
) -> str:
    probability = float(explanation.probability[index])
    size = explanation.inputs.shape[1]
    truth = (
        [] if label is None else [f"label: {({0: 'normal (0)', 1: 'abnormal (1)'}).get(label, str(label))}"]
    )
    return "\n".join(
        [
            f"prediction: {verdict(probability)}",
            f"probability (abnormal): {probability:.3f}",
            f"logit: {float(explanation.logit[index]):+.3f}",
            *truth,
            "",
            f"model input: {size} x {size} px",
            f"panels (c)-(g): top {top_k} channels",
            *(
                ["  by mean activation over space,", f"  near-duplicates (r > {DISTINCT_R}) skipped;"]
                if rank == "distinct"
                else [f"  by {rank} activation over space,"]
            ),
            f"  colour range per {'panel' if scale == 'panel' else 'map'}:",
            "  0..max, or -m..+m centred at 0",
            "CAM: sum_c w_c final_c, signed,",
            f"  bias {explanation.cam_bias:+.3f} left out;",
            f"  grid {explanation.cam_lowres.shape[1]}x{explanation.cam_lowres.shape[2]} at {size} px",
            "  (the paper: 10x10 at 320 px)",
        ]
    )


def case_figure(
    explanation: Explanation,
    index: int,
    input_display_u8: np.ndarray | None = None,
    *,
    title: str,
    label: int | None = None,
    top_k: int = 16,
    rank: str = "distinct",
    cam_alpha: float = 0.5,
    scale: str = "panel",
    input_caption: str = "augmented input",
    outline: np.ndarray | None = None,
    saliency: np.ndarray | None = None,
    saliency_title: str | None = None,
    footer: str | None = None,
) -> CaseFigure:
    """The paper's case figure for image ``index`` of ``explanation`` (see the module docstring).

    Args:
        input_display_u8: the image shown in (a) and under the CAM in (b), framed exactly like the model input
            (any resolution); default: the model input itself.
        title: the figure title (the caller's: case, model set, prediction...).
        label: the ground truth (1 abnormal, 0 normal), shown beside the prediction; None: not shown.
        top_k, rank, scale: channels per activation panel, how they are ranked, colour range per panel/map.
        cam_alpha: the CAM's opacity in (b).
        input_caption: the caption of (a): "augmented input" as in the paper, or "input".
        outline: optional boolean mask (same framing as the display image) drawn as a red contour on (a),
            e.g. the phantom's ground-truth lesion, as the paper's arrow marks the fracture in Figure 4.
        saliency, saliency_title: another map ``(S, S)`` of this image to show in (b) instead of the CAM (e.g.
            a method of :mod:`densenet_interp.explain.methods`), and its name for the panel title; default: the
            CAM, as in the paper.
        footer: a line at the bottom of the figure, e.g. ``"Data: " + profile.data_label``, so that a PNG
            copied out of the project still says which data (phantom or MURA) and which profile it shows.
    """
    _check_index(explanation, index)
    display = _display_image(explanation, index, input_display_u8)
    fig = CaseFigure(figsize=(13.5, 7.6), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=11)
    if footer:
        fig.supxlabel(footer, fontsize=7, color="0.3")
    axes = fig.subplots(2, 4)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])

    ax = axes[0, 0]
    ax.imshow(display, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    if outline is not None:
        ax.contour(np.asarray(outline, dtype=float), levels=[0.5], colors="red", linewidths=1.0)
    ax.set_title(PANEL_TITLES["input"].format(input_caption=input_caption), fontsize=9)

    ax = axes[0, 1]
    if saliency is None:
        cam, panel_title, bar_label = (
            explanation.cam[index],
            PANEL_TITLES["cam"],
            "CAM (signed, 0 at the centre)",
        )
    else:
        name = saliency_title or "saliency map"
        cam, panel_title, bar_label = np.asarray(saliency), f"(b) {name}", name
    ax.imshow(overlay_cam(display, cam, cam_alpha), interpolation="nearest")
    ax.set_title(panel_title, fontsize=9)
    _add_colour_bar(fig, ax, CAM_CMAP, *signed_range(cam), bar_label)

    fig.channels = {}
    for ax, stage in zip(list(axes.flat)[2:7], STAGES, strict=True):
        activation = explanation.stages[stage][index]
        grid = activation_grid(activation, top_k, rank, scale=scale)
        fig.channels[stage] = grid.channels
        ax.imshow(grid.rgb, interpolation="nearest")
        ax.set_title(PANEL_TITLES[stage], fontsize=9)
        h, w, c = activation.shape
        shown = len(grid.channels)
        distinct = distinct_count(np.moveaxis(activation[..., grid.channels], -1, 0))
        ax.set_xlabel(
            f"{explanation.layer_names[stage]} · {h}x{w}x{c} · {distinct} of {shown} maps distinct",
            fontsize=7,
        )
        if scale == "panel":
            _add_colour_bar(fig, ax, ACTIVATION_CMAP, grid.vmin, grid.vmax, "activation")

    ax = axes[1, 3]
    ax.axis("off")
    info = _info_text(explanation, index, label, top_k, rank, scale)
    if saliency is not None:
        info += f"\npanel (b): {saliency_title or 'saliency map'}"
    ax.text(
        0.0,
        1.0,
        info,
        va="top",
        fontsize=8,
        family="monospace",
    )
    return fig


def case_arrays(
    explanation: Explanation,
    index: int,
    input_display_u8: np.ndarray | None = None,
    *,
    top_k: int = 16,
    rank: str = "distinct",
    channels: Mapping[str, np.ndarray] | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays behind a case figure, for ``<stem>.npz`` (no pickled objects, loadable anywhere).

    Keys: ``input`` (model input ``(S, S, 3)`` float32, pixels 0..255), ``display`` (uint8 image of panel a),
    ``cam`` ``(S, S)``, ``cam_lowres``, ``cam_weights``, ``cam_bias``, ``probability``, ``logit``; per stage
    ``<stage>`` = the shown maps ``(h, w, k)`` (channels last, rank order), ``<stage>_channels`` = their
    channel indices and ``<stage>_layer`` = the layer name; then ``extra`` (e.g. label, model set).
    ``channels`` (e.g. ``CaseFigure.channels``) fixes the selection, else top-``k`` by ``rank``.
    """
    _check_index(explanation, index)
    arrays: dict[str, np.ndarray] = {
        "input": explanation.inputs[index],
        "display": _display_image(explanation, index, input_display_u8),
        "cam": explanation.cam[index],
        "cam_lowres": explanation.cam_lowres[index],
        "cam_weights": explanation.cam_weights,
        "cam_bias": np.float32(explanation.cam_bias),
        "probability": np.float32(explanation.probability[index]),
        "logit": np.float32(explanation.logit[index]),
    }
    for stage in STAGES:
        activation = explanation.stages[stage][index]
        if channels is not None and stage in channels:
            chosen = np.asarray(channels[stage], dtype=np.int64)
        else:
            chosen, _ = top_channels(activation, top_k, rank)
        arrays[stage] = activation[..., chosen]
        arrays[f"{stage}_channels"] = chosen
        arrays[f"{stage}_layer"] = np.asarray(explanation.layer_names[stage])
    for key, value in (extra or {}).items():
        if key in arrays:
            raise ValueError(
                f"extra key {key!r} would overwrite an array of the same name; choose another name"
            )
        arrays[key] = np.asarray(value)
    return arrays


def _with_suffix(stem: Path, suffix: str) -> Path:
    return stem.parent / f"{stem.name}{suffix}"  # not with_suffix: stems may contain dots


def write_case_files(
    fig: Figure,
    arrays: Mapping[str, np.ndarray] | None,
    out_stem: str | Path,
    *,
    formats: tuple[str, ...] = (".png", ".pdf"),
    dpi: int = 150,
    data_label: str | None = None,
) -> dict[str, Path]:
    """Write the figure as ``<stem><suffix>`` for each of ``formats`` and, unless ``arrays`` is None, the
    arrays as ``<stem>.npz`` (compressed, no pickles), each atomically; return ``{suffix: path}``.

    With ``data_label`` the figure carries it as a footer and in each file's metadata
    (:func:`~densenet_interp.paths.save_figure_atomic`, which also keeps the dates out, so that the same figure
    gives the same bytes)."""
    out_stem = Path(out_stem)
    written = {}
    for suffix in formats:
        target = _with_suffix(out_stem, suffix)
        written[suffix] = save_figure_atomic(fig, target, data_label=data_label, dpi=dpi)
    if arrays is not None:
        target = _with_suffix(out_stem, ".npz")
        with atomic_path(target) as tmp:
            np.savez_compressed(tmp, **arrays)
        written[".npz"] = target
    return written


def save_case_figure(
    fig: Figure,
    explanation: Explanation,
    index: int,
    input_display_u8: np.ndarray | None,
    out_stem: str | Path,
    *,
    extra: Mapping[str, object] | None = None,
    top_k: int = 16,
    rank: str = "distinct",
    data_label: str | None = None,
) -> dict:
    """Save a case figure as ``<stem>.png``/``.pdf`` and its arrays (:func:`case_arrays`) as ``<stem>.npz``.

    The arrays hold the channels the figure shows (``fig.channels`` of a :class:`CaseFigure`; otherwise the
    top-``k`` by ``rank``). All three files are written atomically.
    """
    channels = getattr(fig, "channels", None)
    arrays = case_arrays(
        explanation, index, input_display_u8, top_k=top_k, rank=rank, channels=channels, extra=extra
    )
    return write_case_files(fig, arrays, out_stem, data_label=data_label)
