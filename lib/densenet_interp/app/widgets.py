"""The explorer: every layer of every model set, interactively (ipywidgets), on top of explain and figures.

Controls: model set and image (dropdowns), a slider over EVERY layer with a 4-D output (not only the paper's
five stages), how many channels to show, how to pick them (distinct/mean/max), the map (a dropdown of the registered
saliency methods, :data:`densenet_interp.explain.methods.METHODS`; default ``cam``) and its opacity. The view
is one PNG in an ``ipywidgets.Image``: the input with the chosen map overlaid ('jet') beside the top channels
of the chosen layer ('bwr', one colour range per panel, as in the case figures).

Speed: activations of all layers come from ONE forward pass per (model, image) (the engine's ``all`` layer
set), kept in an :class:`~densenet_interp.explain.engine.ActivationCache`; a method's map is computed once per
(model, image, method) and kept in the same entry. Moving a slider only recolours arrays and encodes a PNG,
composed with numpy and PIL (no matplotlib): a few milliseconds (``benchmarks/redraw_time.py``).
"""

from __future__ import annotations

import html
import io
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import ipywidgets as w
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import DataError, UserFacingError
from ..explain import methods
from ..explain.engine import STAGES, ActivationCache, explainer_for
from ..explain.figures import (
    ACTIVATION_CMAP,
    CAM_CMAP,
    activation_grid,
    colour_table,
    overlay_cam,
    signed_range,
)
from ..explain.maps import RANKS
from ..models.inference import verdict
from ..profiles import BODY_PARTS, MODEL_SETS

PANEL = 256  # px of each of the two panels at scale 1
GAP = 8
LINE = 17  # px of one line of text at scale 1
SCALE = 2
"""The explorer draws its picture at twice the panel size and the page shows it at most at its natural width:
crisp on a wide window (never stretched), downscaled on a narrow one."""
MAX_K = 64
OUTLINE_COLOURS = {"lesion": (255, 0, 255), "legend": (0, 200, 255), "frame": (255, 200, 0)}
"""Ground-truth regions the explorer can outline (the phantom's annotation: a lesion or metal hardware, the
text legend, the frame), in colours that stay visible over the 'jet' CAM overlay."""


UPLOAD_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")
"""What the upload button offers (DICOM is recognised by content whatever the name)."""
MAX_UPLOAD_BYTES = 64 * 2**20
"""The largest upload read (``make app`` lets the page's connection carry it: ``serve.start_voila``)."""
MAX_LINK_CHARS = 2 * 2**20 - 1024
"""The longest ``data:`` address a download link is given (Chromium refuses addresses over 2 MB)."""
READOUT_CLASS = "densenet-interp-readout"  # CSS classes the browser tests look for
DOWNLOADS_CLASS = "densenet-interp-downloads"
DICOM_BODY_PARTS = {
    "WRIST": "XR_WRIST", "HAND": "XR_HAND", "FINGER": "XR_FINGER", "ELBOW": "XR_ELBOW", "FOREARM": "XR_FOREARM",
    "HUMERUS": "XR_HUMERUS", "ARM": "XR_HUMERUS", "SHOULDER": "XR_SHOULDER",
}  # fmt: skip
"""DICOM's Body Part Examined (its defined terms) as MURA's body parts; other values are kept as they are."""


def part_name(part: str) -> str:
    """``XR_WRIST`` -> ``wrist``; any other body part as given, in lower case."""
    return part.removeprefix("XR_").lower()


def _slug(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits, ``-`` and ``.``)."""
    import re

    return re.sub(r"[^A-Za-z0-9.-]+", "-", str(text)).strip("-.")[:60] or "x"


def _dicom_body_part(path: Path) -> str | None:
    """The body part a DICOM file says it shows (``Body Part Examined``), as a MURA body part where it is one;
    None for other files or when the tag is empty."""
    from ..data import dicom

    with open(path, "rb") as handle:
        if not dicom.looks_like_dicom(handle.read(132)):
            return None
    import pydicom

    try:
        value = str(
            pydicom.dcmread(path, stop_before_pixels=True, force=True).get("BodyPartExamined", "") or ""
        )
    except Exception:  # noqa: BLE001 - the pixels were read already; an odd header only loses the body part
        return None
    value = value.strip().upper()
    return DICOM_BODY_PARTS.get(value, value.lower()) if value else None


def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font, width: float) -> list[str]:
    """``text`` in lines no wider than ``width`` px: broken at spaces, and inside a word only if it alone is
    wider (a long file name is wrapped, never cut)."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    lines, current = [], ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if measure(candidate, font=font) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while measure(current, font=font) > width and len(current) > 1:
            cut = len(current) - 1
            while cut > 1 and measure(current[:cut], font=font) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    return [*lines, current] if current or not lines else lines


def _colour_bar(canvas: np.ndarray, top: int, left: int, width: int, height: int, cmap: str) -> None:
    canvas[top : top + height, left : left + width] = colour_table(cmap)[
        np.linspace(0, 255, width).astype(np.int64)
    ][np.newaxis]


def compose_view(
    gray: np.ndarray,
    cam: np.ndarray,
    activation: np.ndarray,
    *,
    k: int,
    rank: str,
    alpha: float,
    header: list[str],
    map_label: str = "CAM",
    outlines: Mapping[str, np.ndarray] | None = None,
    footer: str = "",
    scale: int = 1,
) -> tuple[np.ndarray, dict]:
    """The explorer's picture as ``uint8 (H, W, 3)``: input + map (left), top-``k`` channel mosaic (right).

    ``header``: lines of text above the panels, wrapped to the picture's width (never cut). ``cam`` is the map
    overlaid on the left (the CAM or another method's, named ``map_label``), on a scale centred at zero for a
    signed map (:func:`~densenet_interp.explain.figures.signed_range`, as in the case figures), with its colour
    bar under the panel; the channel mosaic has its own ('bwr', zero at white). ``outlines``: ground-truth
    masks (any resolution, the image's geometry) whose contours are drawn on the left panel in
    :data:`OUTLINE_COLOURS`. ``footer``: a last line (the data label). ``scale`` multiplies every size.
    Returns the picture and what it shows (channels, colour ranges, outlined regions, where the left panel
    is) for :meth:`Explorer.state`.
    """
    panel, gap, line = PANEL * scale, GAP * scale, LINE * scale
    width = 2 * panel + gap
    font = _font(12 * scale)
    lines = [wrapped for text in header for wrapped in _wrap(text, font, width - 8 * scale)]
    top = len(lines) * line + 6 * scale
    overlay = overlay_cam(gray, cam, alpha)
    left = np.array(Image.fromarray(overlay).resize((panel, panel), Image.Resampling.BILINEAR))
    outlined = []
    for name, colour in OUTLINE_COLOURS.items():
        mask = None if outlines is None else outlines.get(name)
        if mask is not None and np.any(mask):
            left[contour(mask, panel)] = colour
            outlined.append(name)
    grid = activation_grid(activation, k, rank, tile=16, gap=1)
    fit = panel / max(grid.rgb.shape[:2])
    size = (max(1, round(grid.rgb.shape[1] * fit)), max(1, round(grid.rgb.shape[0] * fit)))
    right = np.asarray(Image.fromarray(grid.rgb).resize(size, Image.Resampling.NEAREST))
    caption = f"input + {map_label} ('jet', opacity {alpha:.2f})"
    footer_lines = _wrap(footer, font, width - 8 * scale) if footer else []
    bottom_lines = 3 + bool(outlined) + len(footer_lines)
    canvas = np.full((top + panel + 10 * scale + bottom_lines * line, width, 3), 255, dtype=np.uint8)
    canvas[top : top + panel, :panel] = left
    canvas[top : top + right.shape[0], panel + gap : panel + gap + right.shape[1]] = right
    bar_top = top + panel + 4 * scale
    low, high = signed_range(cam)
    _colour_bar(canvas, bar_top, 0, panel, 8 * scale, CAM_CMAP)
    _colour_bar(canvas, bar_top, panel + gap, panel, 8 * scale, ACTIVATION_CMAP)
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)

    def text(x: float, y: float, value: str, anchor: str = "la") -> None:
        draw.text((x, y), value, fill=(0, 0, 0), font=font, anchor=anchor)

    for row, value in enumerate(lines):
        text(4 * scale, 3 * scale + line * row, value)
    labels_y = bar_top + 10 * scale
    for x0, (vmin, vmax) in ((0, (low, high)), (panel + gap, (grid.vmin, grid.vmax))):
        text(x0 + 2 * scale, labels_y, f"{vmin:.3g}")
        text(x0 + panel - 2 * scale, labels_y, f"{vmax:.3g}", anchor="ra")
        if vmin < 0 < vmax:  # a signed scale: zero is its centre
            text(x0 + panel / 2, labels_y, "0", anchor="ma")
    y = labels_y + line
    text(4 * scale, y, caption)
    text(panel + gap, y, "channels ('bwr', zero at white)")
    y += line
    if outlined:
        text(4 * scale, y, "outlined:")
        x = 4 * scale + draw.textlength("outlined: ", font=font)
        for name in outlined:  # a swatch of each colour, then the region's name
            draw.rectangle((x, y + 3 * scale, x + 8 * scale, y + 11 * scale), fill=OUTLINE_COLOURS[name],
                           outline=(0, 0, 0))  # fmt: skip
            text(x + 11 * scale, y, name)
            x += 11 * scale + draw.textlength(f"{name}  ", font=font)
        y += line
    for value in footer_lines:
        text(4 * scale, y, value)
        y += line
    shown = {
        "channels": [int(c) for c in grid.channels],
        "vmin": grid.vmin,
        "vmax": grid.vmax,
        "map_range": (low, high),
        "outlined": outlined,
        "panel": {"top": top, "left": 0, "size": panel},
        "header_lines": lines,
    }
    return np.asarray(picture), shown


def contour(mask: np.ndarray, size: int) -> np.ndarray:
    """The one-pixel boundary of ``mask`` scaled to ``(size, size)`` (as images are: stretched)."""
    from ..phantom.masks import resize_mask

    region = resize_mask(mask, size)
    inner = np.zeros_like(region)
    inner[1:-1, 1:-1] = (
        region[1:-1, 1:-1] & region[:-2, 1:-1] & region[2:, 1:-1] & region[1:-1, :-2] & region[1:-1, 2:]
    )
    return region & ~inner


def encode_png(picture: np.ndarray) -> bytes:
    """PNG bytes of an RGB array, fast (zlib level 1: the explorer redraws on every slider move)."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class Explorer:
    """The explorer widget. ``models``: name -> ``.keras`` path or ``keras.Model`` (paths load on first use);
    ``images``: name -> ``uint8 (H, W)`` radiograph or image path. Show ``explorer.widget`` in a notebook.

    Programmatic use (tests, benchmarks): :meth:`set` changes several controls with one redraw,
    :meth:`state` reports what is shown, ``png`` is the current picture, ``forward_passes`` counts the
    forward passes run so far and ``redraw_seconds`` times every redraw.
    """

    def __init__(
        self,
        models: Mapping[str, object],
        images: Mapping[str, object],
        image_size: int | None = None,
        *,
        cache: ActivationCache | None = None,
        outlines: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        truth: Mapping[str, int] | None = None,
        body_parts: Mapping[str, str] | None = None,
        trained_on: Mapping[str, Sequence[str]] | None = None,
        data_label: str = "",
        scale: int = SCALE,
    ):
        if not models:
            raise ValueError(
                "no models given; expected {name: model.keras path or keras.Model}, at least one"
            )
        if not images:
            raise ValueError(
                "no images given; expected {name: uint8 (H, W) image or image path}, at least one"
            )
        self._models = dict(models)
        self._images = dict(images)
        self._outlines = dict(outlines or {})  # image name -> {region: mask}; only annotated images
        self._truth = dict(truth or {})  # image name -> 1 abnormal / 0 normal, where known
        self._body_parts = dict(
            body_parts or {}
        )  # image name -> MURA body part (XR_WRIST...) or another part
        self._trained_on = {name: tuple(parts) for name, parts in (trained_on or {}).items()}
        for name in self._models:  # the paper's model sets know their body parts
            if name in MODEL_SETS and name not in self._trained_on:
                self._trained_on[name] = MODEL_SETS[name].body_parts
        self.data_label = data_label
        self.scale = int(scale)
        self.image_size = image_size
        self.cache = cache or ActivationCache()
        self._loaded: dict[str, object] = {}
        self._inputs: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._suspended = False
        self._shown: dict = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._view: dict = {}
        self._uploaded: set[str] = set()
        self.last_error: str | None = None
        self.redraw_seconds: list[float] = []

        labels = {"style": {"description_width": "initial"}}  # a control's label is never cut
        self.model_control = w.Dropdown(options=list(self._models), description="model set", **labels)
        self.image_control = w.Dropdown(options=list(self._images), description="image", **labels)
        self.layer_control = w.SelectionSlider(
            options=["-"], description="layer", continuous_update=True, layout=w.Layout(width="98%")
        )
        self.k_control = w.IntSlider(value=16, min=1, max=MAX_K, description="channels", **labels)
        self.rank_control = w.Dropdown(options=list(RANKS), value="distinct", description="rank by", **labels)
        self.alpha_control = w.FloatSlider(
            value=0.5, min=0.0, max=1.0, step=0.05, description="map opacity", **labels
        )
        names = list(methods.METHODS)  # the registry: a newly registered method is offered here at once
        default = methods.DEFAULT_METHOD if methods.DEFAULT_METHOD in names else names[0]
        self.method_control = w.Dropdown(options=names, value=default, description="map", **labels)
        self.outline_control = w.Checkbox(
            value=False, description="outline ground truth", indent=False, layout=w.Layout(width="auto")
        )
        self.upload_control = w.FileUpload(
            accept=",".join(UPLOAD_SUFFIXES), multiple=False, description="your radiograph",
            tooltip="PNG, JPEG, TIFF or DICOM; explained with the chosen model set, never stored",
            layout=w.Layout(width="auto"),
        )  # fmt: skip
        self.download_control = w.Button(
            description="download this view", icon="download", layout=w.Layout(width="auto"),
            tooltip="the picture as PNG and PDF, and its arrays (.npz)",
        )  # fmt: skip
        self.downloads = w.HTML()
        self.downloads.add_class(DOWNLOADS_CLASS)
        self.readout = w.HTML()
        self.readout.add_class(READOUT_CLASS)
        natural = (2 * PANEL + GAP) * self.scale
        # never wider than 3/4 of its pixels (crisp, text about 18 px high); narrower windows scale it down
        self.view = w.Image(
            format="png", layout=w.Layout(width="100%", max_width=f"{natural * 3 // 4}px", height="auto")
        )
        self.message = w.HTML()
        self.widget = w.VBox(
            [
                w.HBox(
                    [self.model_control, self.image_control, self.outline_control],
                    layout=w.Layout(flex_flow="row wrap"),
                ),  # fmt: skip
                w.HBox([self.upload_control, self.download_control], layout=w.Layout(flex_flow="row wrap")),
                self.layer_control,
                w.HBox(
                    [self.k_control, self.rank_control, self.method_control, self.alpha_control],
                    layout=w.Layout(flex_flow="row wrap"),
                ),  # fmt: skip
                self.readout,
                self.view,
                self.downloads,
                self.message,
            ]
        )
        self.png = b""
        self._sync_layers()
        self._redraw()
        for control in (
            self.image_control,
            self.layer_control,
            self.k_control,
            self.rank_control,
            self.method_control,
            self.alpha_control,
            self.outline_control,
        ):
            control.observe(self._on_change, names="value")
        self.model_control.observe(self._on_model_change, names="value")
        self.upload_control.observe(self._on_upload, names="value")
        self.download_control.on_click(lambda _button: self.offer_downloads())

    # -------------------------------------------------------------------------------------------- data
    def _model(self, name: str):
        if name not in self._loaded:
            value = self._models[name]
            if isinstance(value, (str, Path)):
                from ..models.densenet import load_model

                value = load_model(value)
            size = int(value.input_shape[1])
            if self.image_size is not None and size != self.image_size:
                raise ValueError(
                    f"model {name!r} takes {size} px images; expected {self.image_size} px (image_size)"
                )
            self._loaded[name] = value
        return self._loaded[name]

    def _input(self, name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(gray uint8 (S, S), model input (1, S, S, 3))`` of image ``name``, prepared once per size."""
        if (name, size) not in self._inputs:
            from ..data.images import read_radiograph, resize_square, to_model_input

            value = self._images[name]
            image = read_radiograph(value) if isinstance(value, (str, Path)) else np.asarray(value)
            gray = resize_square(image, size)
            self._inputs[(name, size)] = (gray, to_model_input(gray))
        return self._inputs[(name, size)]

    def _activations(self):
        """``(gray, explanation of every layer, the chosen method's map (S, S))`` of the current image."""
        model = self._model(self.model_control.value)
        gray, batch = self._input(self.image_control.value, int(model.input_shape[1]))
        method = self.method_control.value
        saliency = self.cache.derived(
            model,
            batch,
            f"map:{method}",
            lambda explainer, explanation: methods.saliency(method, explainer, explanation)[0],
        )
        return gray, self.cache.get(model, batch), saliency

    # ------------------------------------------------------------------------------------------ events
    def _sync_layers(self) -> None:
        """Offer the current model's layers on the slider, keeping the chosen layer if it exists there."""
        explainer = explainer_for(self._model(self.model_control.value), "all")
        names = list(explainer.captured)
        current = self.layer_control.value
        self._suspended = True
        try:
            self.layer_control.options = names
            if current in names:
                self.layer_control.value = current
            else:
                self.layer_control.value = explainer.layer_names[STAGES[0]]
        finally:
            self._suspended = False

    def _on_change(self, _change=None) -> None:
        if not self._suspended:
            self._redraw()

    def _on_model_change(self, _change=None) -> None:
        if self._suspended:
            return
        try:
            self._sync_layers()
        except (UserFacingError, ValueError) as exc:  # e.g. a model file that does not load
            self._show_error(exc)
            return
        self._redraw()

    def _show_error(self, exc: Exception) -> None:
        """Keep the last picture and say why the new one cannot be shown (a callback must not raise)."""
        self.last_error = str(exc)
        self.message.value = f"<b>cannot show this:</b> {html.escape(str(exc))}"

    def _redraw(self) -> None:
        started = time.perf_counter()
        try:
            gray, explanation, saliency = self._activations()
        except (UserFacingError, ValueError) as exc:
            self._show_error(exc)
            return
        layer = self.layer_control.value
        activation = explanation.activations[layer][0]
        names = explanation.captured
        h, wd, c = activation.shape
        k, rank, alpha = self.k_control.value, self.rank_control.value, self.alpha_control.value
        method = self.method_control.value
        probability = float(explanation.probability[0])
        stage = next((s for s, n in explanation.layer_names.items() if n == layer), None)
        header = [
            f"p(abnormal) = {probability:.3f} ({verdict(probability)}) | ground truth: "
            f"{self._truth_text(self.image_control.value)} | model set {self.model_control.value} | "
            f"image {self.image_control.value}",
            f"layer {names.index(layer) + 1}/{len(names)}: {layer}{f' [{stage}]' if stage else ''} "
            f"{h}x{wd}x{c} | top {min(k, c)} by {rank}",
        ]
        label = "CAM" if method == methods.DEFAULT_METHOD else methods.title(method)
        annotated = self._outlines.get(self.image_control.value)
        self.outline_control.disabled = annotated is None  # nothing to outline on real or uploaded images
        picture, shown = compose_view(
            gray, saliency, activation, k=k, rank=rank, alpha=alpha, header=header, map_label=label,
            outlines=annotated if self.outline_control.value else None, footer=self._label(),
            scale=self.scale,
        )  # fmt: skip
        self.png = encode_png(picture)
        self.view.value = self.png
        note = self.body_part_note()
        self._shown = {**shown, "probability": probability, "shape": (h, wd, c), "note": note,
                       "truth": self._truth.get(self.image_control.value)}  # fmt: skip
        # what a download holds: this picture's own facts (a later failed redraw keeps the picture, not these)
        self._view = {"model": self.model_control.value, "image": self.image_control.value, "layer": layer,
                      "method": method, "probability": probability, "data_label": self._label()}  # fmt: skip
        self._arrays = {"image": gray, "map": np.asarray(saliency, dtype=np.float32),
                        "channels": np.asarray(shown["channels"], dtype=np.int64),
                        "shown_activations": np.asarray(activation[..., shown["channels"]], dtype=np.float32)}  # fmt: skip
        self.readout.value = self._readout_html(probability, note)
        self.downloads.value = ""  # links of an earlier view would download that view
        self.last_error = None
        self.message.value = ""
        self.redraw_seconds.append(time.perf_counter() - started)

    # ------------------------------------------------------------------------------------ what it says
    def _label(self) -> str:
        """What the shown image is, for the picture's footer and the downloads: the profile's data label, or
        for an uploaded image, that it is the user's (and on which data the models were trained)."""
        if self.image_control.value in self._uploaded:
            return (
                f"your radiograph (not from the dataset); models trained on: {self.data_label or 'not named'}"
            )
        return self.data_label

    def _truth_text(self, image: str) -> str:
        truth = self._truth.get(image)
        return "unknown" if truth is None else ("abnormal" if truth else "normal")

    def body_part_note(self) -> str | None:
        """A note when the model set was not trained on the image's body part (or that part is unknown and the
        model set saw only some parts); None when the image is what the model set was trained on."""
        model, image = self.model_control.value, self.image_control.value
        parts = self._trained_on.get(model)
        if not parts or set(parts) >= set(BODY_PARTS):
            return None  # trained on every body part (or nothing is known about the model)
        seen = " and ".join(part_name(p) for p in parts)
        part = self._body_parts.get(image)
        if part is None:
            return (f"The body part of this image is not known: {model} was trained on {seen} radiographs only, "
                    "so its output means little on any other.")  # fmt: skip
        if part in parts:
            return None
        return (f"{model} was trained on {seen} radiographs only; this is a {part_name(part)} radiograph, so "
                "its output here is outside what it learned.")  # fmt: skip

    def _readout_html(self, probability: float, note: str | None) -> str:
        """Probability, predicted class, ground truth, model set and image, in text that wraps (never cut)."""
        image = self.image_control.value
        sep = " &nbsp;&middot;&nbsp; "
        first = sep.join((
            f"<b>p(abnormal) = {probability:.3f}</b>",
            f"predicted <b>{verdict(probability)}</b>",
            f"ground truth <b>{self._truth_text(image)}</b>",
        ))  # fmt: skip
        second = (
            f"model set <b>{html.escape(self.model_control.value)}</b>{sep}image <b>{html.escape(image)}</b>"
        )
        warning = (
            f"<div style='margin-top: 4px; padding: 2px 8px; border-left: 4px solid #e67e22; background: #fef5e7'>"
            f"{html.escape(note)}</div>"
            if note else ""
        )  # fmt: skip
        return (f"<div style='font-size: 1.15em; line-height: 1.5; overflow-wrap: anywhere; white-space: normal'>"
                f"<div>{first}</div><div>{second}</div>{warning}</div>")  # fmt: skip

    # --------------------------------------------------------------------------- your radiograph, downloads
    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        try:
            self.add_image_file(item["name"], bytes(item["content"]))
        except UserFacingError as exc:
            self._show_error(exc)
        finally:
            self.upload_control.value = ()  # the same file can be chosen again; the bytes are not kept

    def add_image_file(self, name: str, content: bytes) -> str:
        """Read an uploaded file (PNG, JPEG, TIFF, DICOM...; DICOM by content, with its body part when it says),
        add it to the images as ``your image: <name>`` and show it; returns that name.

        The file is decoded as every radiograph is (``data.images.read_radiograph``) from a temporary copy that
        is deleted at once; only the pixels are kept, in this kernel. A file that cannot be read raises
        :class:`UserFacingError` naming it (the page shows it in one line).
        """
        import tempfile

        from ..data.images import read_radiograph

        shown_name = Path(str(name)).name or "upload"
        if len(content) > MAX_UPLOAD_BYTES:
            raise DataError(f"{len(content) / 2**20:.0f} MB is more than the {MAX_UPLOAD_BYTES // 2**20} MB an "
                            "upload may be", shown_name)  # fmt: skip
        suffix = Path(shown_name).suffix.lower()
        with tempfile.TemporaryDirectory(prefix="densenet-interp-upload-") as folder:
            path = Path(folder) / f"upload{suffix if suffix in UPLOAD_SUFFIXES else ''}"
            try:
                path.write_bytes(content)
                image = read_radiograph(path)
                part = _dicom_body_part(path)
            except UserFacingError as exc:
                raise DataError(exc.problem, shown_name) from None
            except OSError as exc:
                raise DataError(f"cannot read the upload ({exc.strerror or exc})", shown_name) from None
        key = f"your image: {shown_name}"
        for n in range(2, 1000):
            if key not in self._images:
                break
            key = f"your image: {shown_name} ({n})"
        self._images[key] = image
        self._uploaded.add(key)
        if part is not None:
            self._body_parts[key] = part
        self._suspended = True
        try:
            self.image_control.options = list(self._images)
            self.image_control.value = key
        finally:
            self._suspended = False
        self._redraw()
        return key

    def download_files(self) -> dict[str, bytes]:
        """The picture on screen as files: ``<stem>.png`` and ``<stem>.pdf`` (with what it shows and its data
        label in their metadata) and ``<stem>.npz`` (the image, the map, the indices of the channels shown and
        those channels' activations, float32). Named after the view that drew the picture."""
        from PIL.PngImagePlugin import PngInfo

        view = self._view
        if not view:
            raise UserFacingError("nothing is shown yet, so there is nothing to download")
        stem = "_".join(_slug(view[key]) for key in ("model", "image", "layer", "method"))
        description = f"{view['model']} on {view['image']}: layer {view['layer']}, map {view['method']}"
        label = view["data_label"] or "data not named"
        picture = Image.open(io.BytesIO(self.png)).convert("RGB")
        info = PngInfo()
        for key, value in (
            ("Title", description),
            ("Source", "densenet-interp explorer"),
            ("Comment", label),
        ):
            info.add_text(key, value)
        png, pdf, arrays = io.BytesIO(), io.BytesIO(), io.BytesIO()
        picture.save(png, format="PNG", pnginfo=info)
        picture.save(pdf, format="PDF", resolution=72.0 * self.scale, title=description, subject=label,
                     creator="densenet-interp explorer")  # fmt: skip
        np.savez_compressed(
            arrays, **self._arrays, probability=np.float32(view["probability"]), model=view["model"],
            image_name=view["image"], layer=view["layer"], method=view["method"], data_label=label,
        )  # fmt: skip
        return {
            f"{stem}.png": png.getvalue(),
            f"{stem}.pdf": pdf.getvalue(),
            f"{stem}.npz": arrays.getvalue(),
        }

    def offer_downloads(self) -> None:
        """Show links that download the picture on screen (:meth:`download_files`); a redraw takes them away.

        A link carries its file in the page (a ``data:`` address); a browser takes such an address up to about
        2 MB (:data:`MAX_LINK_CHARS`), so a larger file is named with its size instead of a link.
        """
        import base64

        types = {".png": "image/png", ".pdf": "application/pdf", ".npz": "application/octet-stream"}
        try:
            files = self.download_files()
        except UserFacingError as exc:
            self._show_error(exc)
            return
        links = []
        for name, data in files.items():
            kind, text = types[Path(name).suffix], html.escape(Path(name).suffix[1:].upper())
            address = f"data:{kind};base64,{base64.b64encode(data).decode()}"
            if len(address) > MAX_LINK_CHARS:
                links.append(
                    f"{text} ({len(data) / 2**20:.1f} MB: too large for a link; fewer channels make it smaller)"
                )
            else:
                links.append(f"<a download='{html.escape(name)}' href='{address}'>{text}</a>")
        self.downloads.value = f"download this view: {' &nbsp; '.join(links)}"

    # ------------------------------------------------------------------------------------- programmatic
    @property
    def forward_passes(self) -> int:
        return self.cache.forward_passes

    @property
    def layer_names(self) -> list[str]:
        return list(self.layer_control.options)

    def state(self) -> dict:
        """What is selected and shown: model, image, layer (and its index), k, rank, alpha, channels..."""
        return {
            "model": self.model_control.value,
            "image": self.image_control.value,
            "layer": self.layer_control.value,
            "layer_index": self.layer_names.index(self.layer_control.value),
            "k": self.k_control.value,
            "rank": self.rank_control.value,
            "method": self.method_control.value,
            "alpha": self.alpha_control.value,
            "outline": self.outline_control.value,
            "forward_passes": self.forward_passes,
            "error": self.last_error,
            **self._shown,
        }

    def set(
        self,
        *,
        model: str | None = None,
        image: str | None = None,
        layer: str | int | None = None,
        k: int | None = None,
        rank: str | None = None,
        method: str | None = None,
        alpha: float | None = None,
        outline: bool | None = None,
    ) -> None:
        """Change any of the controls (``layer`` by name or index, ``method`` the map), then redraw once."""
        for value, options, what in ((model, self._models, "model"), (image, self._images, "image")):
            if value is not None and value not in options:
                raise ValueError(f"unknown {what} {value!r}; expected one of {list(options)}")
        if rank is not None and rank not in RANKS:
            raise ValueError(f"rank must be one of {RANKS}, got {rank!r}")
        if method is not None and method not in self.method_control.options:
            raise ValueError(f"unknown map {method!r}; expected one of {list(self.method_control.options)}")
        if k is not None and not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
        self._suspended = True
        try:
            if model is not None:
                self.model_control.value = model
        finally:
            self._suspended = False
        if model is not None:
            self._sync_layers()
        if isinstance(layer, int) and not isinstance(layer, bool):
            if not 0 <= layer < len(self.layer_names):
                raise ValueError(
                    f"layer index {layer} out of range; the model has {len(self.layer_names)} layers"
                )
            layer = self.layer_names[layer]
        if layer is not None and layer not in self.layer_names:
            raise ValueError(
                f"unknown layer {layer!r}; expected one of the {len(self.layer_names)} 4-D layers"
            )
        self._suspended = True
        try:
            for control, value in (
                (self.image_control, image),
                (self.layer_control, layer),
                (self.k_control, k),
                (self.rank_control, rank),
                (self.method_control, method),
                (self.alpha_control, alpha),
                (self.outline_control, outline),
            ):
                if value is not None:
                    control.value = value
        finally:
            self._suspended = False
        self._redraw()


class Gallery(dict):
    """The explorer's images (name -> image or path), with ``outlines``: name -> ground-truth masks of the
    images the phantom annotates (the image's own geometry, cropped where the image is); ``truth``: name ->
    label (1 abnormal, 0 normal); ``body_parts``: name -> MURA body part."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outlines: dict[str, dict[str, np.ndarray]] = {}
        self.truth: dict[str, int] = {}
        self.body_parts: dict[str, str] = {}


def default_gallery(profile, mura_dir: str | Path | None, n_validation: int = 12) -> Gallery:
    """The explorer's images: the paper's case images (cropped where the case crops), then validation images.

    Phantom profiles render the cases; the ``paper`` profile includes the cases whose MURA path is set.
    ``n_validation`` validation images are taken from ``mura_dir`` in turn over body parts and labels
    (deterministic), as paths (read when first shown). On the phantom, ``outlines`` holds each image's
    ground-truth regions (:data:`OUTLINE_COLOURS`), for the explorer's outline switch.
    """
    from ..data.frames import crop_frame
    from ..explain.cases import case_image, load_cases
    from ..phantom.masks import masks_for

    def regions(annotation: dict | None, shape, box=None) -> dict[str, np.ndarray] | None:
        if not annotation:
            return None
        masks = masks_for(annotation, size=shape)
        if box is not None:
            top, bottom, left, right = box
            masks = {name: mask[top:bottom, left:right] for name, mask in masks.items()}
        return {name: masks[name] for name in OUTLINE_COLOURS if name in masks}

    groups: dict[tuple, list] = {}  # figures that show the same image share one gallery entry
    for case in load_cases():
        if profile.phantom or case.mura_path is not None:
            source = case.phantom_case if profile.phantom else case.mura_path
            groups.setdefault((source, case.seed, case.crop_frame), []).append(case)
    gallery = Gallery()
    for group in groups.values():
        case = group[0]
        image, annotation = case_image(case, profile, mura_root=mura_dir)
        shape, box = image.shape[:2], None
        if case.crop_frame:
            image, box = crop_frame(image)
        subject = case.title.split(": ", 1)[-1].split(",")[0]
        name = f"Fig. {'/'.join(str(c.figure) for c in group)}: {subject}"
        gallery[name] = image
        gallery.truth[name], gallery.body_parts[name] = int(case.label), case.body_part
        if (masks := regions(annotation, shape, box)) is not None:
            gallery.outlines[name] = masks
    if n_validation > 0 and mura_dir is not None and Path(mura_dir).exists():
        from ..data.mura import read_mura

        images = read_mura(mura_dir).images
        annotations = {}
        if profile.phantom:
            from ..phantom.masks import load_annotations

            annotations = load_annotations(mura_dir)
        valid = images[images["split"] == "valid"]
        groups = [group for _, group in valid.groupby(["body_part", "label"], sort=True)]
        rows = [
            group.iloc[i]
            for i in range(max(map(len, groups), default=0))
            for group in groups
            if i < len(group)
        ]
        for row in rows[:n_validation]:  # round-robin: first image of every group, then the second...
            kind = "abnormal" if row["label"] else "normal"
            name = f"valid {row['body_part'][3:].lower()} {row['patient']} {row['study']} image{row['view_index']} ({kind})"
            gallery[name] = Path(row["abs_path"])
            gallery.truth[name], gallery.body_parts[name] = int(row["label"]), str(row["body_part"])
            annotation = annotations.get(row["path"])
            if (masks := regions(annotation, None)) is not None:
                gallery.outlines[name] = masks
    return gallery
