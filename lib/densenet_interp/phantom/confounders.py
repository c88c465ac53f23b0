"""Things on a radiograph that are not anatomy: burned-in text legends, side markers and rectangular frames.

MURA images carry them, and a network can learn them as shortcuts (the paper's Figs. 5, 7, 8 and 10):

- the *side marker* ("L"/"R", a lead letter, sometimes boxed) appears independently of the label;
- the *text legend* (view name, hospital-like text) appears with a probability that may depend on the label
  (``knobs.legend_probabilities``), so that shortcut learning can be switched on and measured;
- a *frame*: a collimation edge (the outside area a different, flat intensity) or a drawn border rectangle.

Every item's pixel polygon goes into the annotation (``legend`` and ``frame`` lists) so CAM overlap with
confounders can be measured. Text is drawn with PIL's built-in scalable font, bright, near the image edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HOSPITAL_TEXT = (
    "ST MARY RAD",
    "CITY ORTHO",
    "XR ROOM 2",
    "RADIOLOGY",
    "EMERG DEPT",
    "OUTPATIENT",
    "NORTH WING",
    "DR-3",
    "CR 1",
    "RM 4",
    "MERCY HOSP",
    "FRACTURE CL",
)
VIEW_TEXT = {"PA": "PA", "AP": "AP", "LAT": "LAT", "OBL": "OBL", "GRASHEY": "AP OBL", "Y": "Y VIEW"}
FRAME_STYLES = ("collimation", "border")


@dataclass
class Confounders:
    """What was burned into one image: legend items (text and polygon) and the frame, if any."""

    legend: list[list[list[float]]] = field(default_factory=list)  # polygons
    legend_texts: list[str] = field(default_factory=list)
    legend_kinds: list[str] = field(default_factory=list)  # "marker" or "text"
    frame: list[list[list[float]]] = field(default_factory=list)  # polygons of the frame's edge band
    frame_box: list[float] | None = None  # [x0, y0, x1, y1]: the inside of the frame (crop box)
    frame_style: str | None = None


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [
        [round(x0, 1), round(y0, 1)],
        [round(x1, 1), round(y0, 1)],
        [round(x1, 1), round(y1, 1)],
        [round(x0, 1), round(y1, 1)],
    ]


def add_frame(
    img: np.ndarray,
    rng: np.random.Generator,
    keep: tuple[float, float, float, float] | None,
    style: str | None = None,
) -> tuple[np.ndarray, Confounders]:
    """A rectangular frame: collimation (flat outside) or a border line, containing box ``keep`` if given.

    ``keep`` is ``(x0, y0, x1, y1)`` in pixels (the lesion's bounding box) so that a frame never hides it.
    """
    h, w = img.shape
    style = style or FRAME_STYLES[int(rng.random() < 0.45)]
    x0, x1 = rng.uniform(0.03, 0.14) * w, w - rng.uniform(0.03, 0.14) * w
    y0, y1 = rng.uniform(0.03, 0.14) * h, h - rng.uniform(0.03, 0.14) * h
    if keep is not None:
        x0, y0 = min(x0, max(keep[0] - 3, 2.0)), min(y0, max(keep[1] - 3, 2.0))
        x1, y1 = max(x1, min(keep[2] + 3, w - 2.0)), max(y1, min(keep[3] + 3, h - 2.0))
    x0, y0, x1, y1 = (float(round(v)) for v in (x0, y0, x1, y1))
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
    out = img.copy()
    line = max(2.0, rng.uniform(2, 5) * max(h, w) / 512)
    if style == "collimation":
        out[~inside] = rng.uniform(0.5, 0.95) if rng.random() < 0.75 else rng.uniform(0.0, 0.15)
    else:
        out[~inside] *= rng.uniform(0.3, 0.8)
        ring = ~inside & (xx >= x0 - line) & (xx < x1 + line) & (yy >= y0 - line) & (yy < y1 + line)
        out[ring] = rng.uniform(0.85, 1.0) if rng.random() < 0.7 else rng.uniform(0.0, 0.1)
    band = line / 2 + 2.0 if style == "border" else 2.5
    cx0, cx1 = (x0 - line / 2, x1 + line / 2) if style == "border" else (x0, x1)
    cy0, cy1 = (y0 - line / 2, y1 + line / 2) if style == "border" else (y0, y1)
    strips = [
        _rect(cx0 - band, cy0 - band, cx1 + band, cy0 + band),
        _rect(cx0 - band, cy1 - band, cx1 + band, cy1 + band),
        _rect(cx0 - band, cy0 - band, cx0 + band, cy1 + band),
        _rect(cx1 - band, cy0 - band, cx1 + band, cy1 + band),
    ]
    return out, Confounders(frame=strips, frame_box=[x0, y0, x1, y1], frame_style=style)


def burn_text(
    img: np.ndarray,
    rng: np.random.Generator,
    conf: Confounders,
    view: str,
    side: str,
    text_legend: bool,
    marker: bool,
    legend_scale: float = 1.0,
) -> np.ndarray:
    """Burn a side marker and/or a text legend (bright, near corners) into ``img``; record their polygons.

    ``legend_scale`` enlarges the text legend (a prominent legend for the paper's Fig. 5 case).
    """
    h, w = img.shape
    long_side = max(h, w)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    corners = list(rng.permutation(4))
    if text_legend:
        size = max(7, int(round(rng.uniform(0.030, 0.048) * long_side * legend_scale)))
        lines = [VIEW_TEXT.get(view, view)]
        if rng.random() < 0.8:
            lines.append(str(rng.choice(HOSPITAL_TEXT)))
        if rng.random() < 0.35:
            lines.append(f"{int(rng.integers(45, 70))} KV  {int(rng.integers(2, 12))} MAS")
        _place(draw, conf, "\n".join(lines), size, int(corners.pop()), h, w, rng, "text", boxed=False)
    if marker:
        size = max(9, int(round(rng.uniform(0.06, 0.10) * long_side)))
        _place(draw, conf, side, size, int(corners.pop()), h, w, rng, "marker", boxed=rng.random() < 0.4)
    if not (text_legend or marker):
        return img
    alpha = np.asarray(canvas, dtype=np.float32) * (1.0 / 255.0)
    level = rng.uniform(0.85, 1.0)
    return img * (1.0 - alpha) + level * alpha


def _place(draw, conf, text, size, corner, h, w, rng, kind, boxed) -> None:
    """Draw ``text`` in ``corner`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) with jitter."""
    font = _font(size)
    left, t, r, b = draw.multiline_textbbox((0, 0), text, font=font, spacing=size // 4)
    tw, th = r - left, b - t
    pad = max(2, size // 5) if boxed else 0
    margin_x = rng.uniform(0.02, 0.12) * w
    margin_y = rng.uniform(0.02, 0.10) * h
    x = margin_x if corner in (0, 2) else w - margin_x - tw - 2 * pad
    y = margin_y if corner in (0, 1) else h - margin_y - th - 2 * pad
    x, y = int(np.clip(x, 1, max(w - tw - 2 * pad - 1, 1))), int(np.clip(y, 1, max(h - th - 2 * pad - 1, 1)))
    draw.multiline_text((x + pad - left, y + pad - t), text, fill=255, font=font, spacing=size // 4)
    x1, y1 = x + tw + 2 * pad, y + th + 2 * pad
    if boxed:
        draw.rectangle((x, y, x1, y1), outline=255, width=max(1, size // 12))
    conf.legend.append(_rect(x - 1, y - 1, x1 + 1, y1 + 1))
    conf.legend_texts.append(text)
    conf.legend_kinds.append(kind)
