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
from collections.abc import Mapping
from pathlib import Path

import ipywidgets as w
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import UserFacingError
from ..explain import methods
from ..explain.engine import STAGES, ActivationCache, explainer_for
from ..explain.figures import ACTIVATION_CMAP, activation_grid, colour_table, overlay_cam
from ..explain.maps import RANKS
from ..models.inference import verdict

PANEL = 256  # px of each of the two panels
HEADER = 40  # px of text above the panels
FOOTER = 34  # px below: colour bar and captions
GAP = 8
MAX_K = 64
OUTLINE_COLOURS = {"lesion": (255, 0, 255), "legend": (0, 200, 255), "frame": (255, 200, 0)}
"""Ground-truth regions the explorer can outline (the phantom's annotation: a lesion or metal hardware, the
text legend, the frame), in colours that stay visible over the 'jet' CAM overlay."""


def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


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
) -> tuple[np.ndarray, dict]:
    """The explorer's picture as ``uint8 (H, W, 3)``: input + map (left), top-``k`` channel mosaic (right).

    ``cam`` is the map overlaid on the left (the CAM or another method's, named ``map_label`` in the caption).
    ``outlines``: ground-truth masks (any resolution, the image's geometry) whose contours are drawn on the
    left panel in :data:`OUTLINE_COLOURS`. Returns the picture and what it shows (channels, colour range,
    outlined regions) for :meth:`Explorer.state`.
    """
    overlay = overlay_cam(gray, cam, alpha)
    left = np.array(Image.fromarray(overlay).resize((PANEL, PANEL), Image.Resampling.BILINEAR))
    outlined = []
    for name, colour in OUTLINE_COLOURS.items():
        mask = None if outlines is None else outlines.get(name)
        if mask is not None and np.any(mask):
            left[contour(mask, PANEL)] = colour
            outlined.append(name)
    grid = activation_grid(activation, k, rank, tile=16, gap=1)
    scale = PANEL / max(grid.rgb.shape[:2])
    size = (max(1, round(grid.rgb.shape[1] * scale)), max(1, round(grid.rgb.shape[0] * scale)))
    right = np.asarray(Image.fromarray(grid.rgb).resize(size, Image.Resampling.NEAREST))
    canvas = np.full((HEADER + PANEL + FOOTER, 2 * PANEL + GAP, 3), 255, dtype=np.uint8)
    canvas[HEADER : HEADER + PANEL, :PANEL] = left
    canvas[HEADER : HEADER + right.shape[0], PANEL + GAP : PANEL + GAP + right.shape[1]] = right
    bar_top = HEADER + PANEL + 4
    canvas[bar_top : bar_top + 8, PANEL + GAP :] = colour_table(ACTIVATION_CMAP)[
        np.linspace(0, 255, PANEL).astype(np.int64)
    ][np.newaxis]
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    font = _font()
    for row, text in enumerate(header):
        draw.text((4, 3 + 17 * row), text, fill=(0, 0, 0), font=font)
    draw.text((4, bar_top), f"input + {map_label} ('jet', opacity {alpha:.2f})", fill=(0, 0, 0), font=font)
    x = 4
    if outlined:
        draw.text((x, bar_top + 15), "outlined:", fill=(0, 0, 0), font=font)
        x += 62
    for name in outlined:  # a swatch of each colour, then the region's name
        draw.rectangle((x, bar_top + 18, x + 8, bar_top + 26), fill=OUTLINE_COLOURS[name], outline=(0, 0, 0))
        draw.text((x + 11, bar_top + 15), name, fill=(0, 0, 0), font=font)
        x += 17 + 7 * len(name)
    draw.text((PANEL + GAP, bar_top + 10), f"{grid.vmin:.3g}", fill=(0, 0, 0), font=font)
    high = f"{grid.vmax:.3g}"
    draw.text((2 * PANEL + GAP - 6 * len(high) - 4, bar_top + 10), high, fill=(0, 0, 0), font=font)
    shown = {
        "channels": [int(c) for c in grid.channels],
        "vmin": grid.vmin,
        "vmax": grid.vmax,
        "outlined": outlined,
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
        self.image_size = image_size
        self.cache = cache or ActivationCache()
        self._loaded: dict[str, object] = {}
        self._inputs: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._suspended = False
        self._shown: dict = {}
        self.last_error: str | None = None
        self.redraw_seconds: list[float] = []

        self.model_control = w.Dropdown(options=list(self._models), description="model set")
        self.image_control = w.Dropdown(options=list(self._images), description="image")
        self.layer_control = w.SelectionSlider(
            options=["-"], description="layer", continuous_update=True, layout=w.Layout(width="98%")
        )
        self.k_control = w.IntSlider(value=16, min=1, max=MAX_K, description="channels")
        self.rank_control = w.Dropdown(options=list(RANKS), value="distinct", description="rank by")
        self.alpha_control = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="CAM opacity")
        names = list(methods.METHODS)  # the registry: a newly registered method is offered here at once
        default = methods.DEFAULT_METHOD if methods.DEFAULT_METHOD in names else names[0]
        self.method_control = w.Dropdown(options=names, value=default, description="map")
        self.outline_control = w.Checkbox(
            value=False, description="outline ground truth", indent=False, layout=w.Layout(width="auto")
        )
        self.view = w.Image(format="png")
        self.message = w.HTML()
        self.widget = w.VBox(
            [
                w.HBox([self.model_control, self.image_control, self.outline_control]),
                self.layer_control,
                w.HBox([self.k_control, self.rank_control, self.method_control, self.alpha_control]),
                self.view,
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
            f"{self.model_control.value} | {self.image_control.value} | p(abnormal) = {probability:.3f} "
            f"({verdict(probability)})",
            f"layer {names.index(layer) + 1}/{len(names)}: {layer}{f' [{stage}]' if stage else ''} "
            f"{h}x{wd}x{c} | top {min(k, c)} by {rank}",
        ]
        label = "CAM" if method == methods.DEFAULT_METHOD else methods.title(method)
        annotated = self._outlines.get(self.image_control.value)
        self.outline_control.disabled = annotated is None  # nothing to outline on real or uploaded images
        picture, shown = compose_view(
            gray, saliency, activation, k=k, rank=rank, alpha=alpha, header=header, map_label=label,
            outlines=annotated if self.outline_control.value else None,
        )  # fmt: skip
        self.png = encode_png(picture)
        self.view.value = self.png
        self._shown = {**shown, "probability": probability, "shape": (h, wd, c)}
        self.last_error = None
        self.message.value = ""
        self.redraw_seconds.append(time.perf_counter() - started)

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
    images the phantom annotates (the image's own geometry, cropped where the image is)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outlines: dict[str, dict[str, np.ndarray]] = {}


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
            annotation = annotations.get(row["path"])
            if (masks := regions(annotation, None)) is not None:
                gallery.outlines[name] = masks
    return gallery
