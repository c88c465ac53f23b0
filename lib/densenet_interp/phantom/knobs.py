"""The knobs that set how hard the phantom is, and how the text legend correlates with the label.

All defaults are chosen so that a DenseNet lands in the paper's regime (image-level accuracy about 0.75-0.9,
not 0.99): lesions are drawn large enough for the ``mini`` profile's small model to see at 128 px, yet one
image in ten of an abnormal study does not show its lesion (as in MURA, where a study is labelled abnormal
although only some views show the abnormality), some abnormal studies are subtle, and a few labels are wrong.
Each field is documented in :class:`DifficultyKnobs`; the module docstring of ``phantom`` says how the
defaults were chosen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import UserFacingError

DEFAULT_LEGEND_CORRELATION = 0.2


@dataclass(frozen=True)
class DifficultyKnobs:
    """Every parameter that makes the phantom easier or harder (defaults in brackets).

    - ``lesion_scale`` [3.0]: multiplies every lesion's magnitude: fracture gap, displacement and angulation,
      joint narrowing and osteophyte size, subluxation shift and angle, scaphoid shift.
    - ``subtle_fraction`` [0.15]: fraction of abnormal studies drawn subtle, at ``subtle_scale`` [0.45] of
      the magnitude (hairline fractures, small spurs, slight shifts). Hardware is never subtle.
    - ``hidden_view_probability`` [0.1]: probability that an image of an abnormal study does not show the
      lesion (it is rendered from the same limb without the lesion, and its lesion mask is empty); at least
      one image per abnormal study shows it. ``hardware_hidden_probability`` [0.05] is the same for hardware.
    - ``label_noise`` [0.02]: fraction of studies whose rendering contradicts their label (a normal-looking
      study labelled abnormal, or a lesion in a study labelled normal), like reader disagreement in MURA.
    - ``noise_level`` [1.0]: multiplies quantum and electronic noise.
    - ``anatomy_variation`` [1.0]: multiplies every random anatomical size/shape jitter and every positioning
      jitter (view angle, tilt, shift, zoom).
    - ``legend_base_rate`` [0.7]: probability of a text legend when ``legend_correlation`` is 0.
    - ``marker_probability`` [0.6]: probability of an "L"/"R" side marker (independent of the label).
    - ``frame_probability`` [0.15]: probability of a rectangular frame (collimation edge or border).
    - ``inverted_probability`` [0.05]: probability of inverted polarity (bone dark, air bright).
    """

    lesion_scale: float = 3.0
    subtle_fraction: float = 0.15
    subtle_scale: float = 0.45
    hidden_view_probability: float = 0.1
    hardware_hidden_probability: float = 0.05
    label_noise: float = 0.02
    noise_level: float = 1.0
    anatomy_variation: float = 1.0
    legend_base_rate: float = 0.7
    marker_probability: float = 0.6
    frame_probability: float = 0.15
    inverted_probability: float = 0.05

    def __post_init__(self) -> None:
        for name in (
            "subtle_fraction",
            "hidden_view_probability",
            "hardware_hidden_probability",
            "label_noise",
            "legend_base_rate",
            "marker_probability",
            "frame_probability",
            "inverted_probability",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserFacingError(f"difficulty knob {name} must be a probability in [0, 1], got {value}")
        for name in ("lesion_scale", "subtle_scale", "noise_level", "anatomy_variation"):
            value = getattr(self, name)
            if value < 0:
                raise UserFacingError(f"difficulty knob {name} must be >= 0, got {value}")

    def to_dict(self) -> dict:
        return asdict(self)


def legend_probabilities(correlation: float | None, base_rate: float) -> tuple[float, float]:
    """``(P(text legend | abnormal), P(text legend | normal))`` for a legend-label correlation in [0, 1].

    With base rate ``b`` and correlation ``c``: ``P(legend | abnormal) = b + c (1 - b)`` and
    ``P(legend | normal) = b (1 - c)``. ``c = 0``: independent of the label (both ``b``); ``c = 1``: a perfect
    shortcut (every abnormal image has a legend, no normal image has one). ``None`` means the default 0.2.
    """
    c = DEFAULT_LEGEND_CORRELATION if correlation is None else float(correlation)
    if not 0.0 <= c <= 1.0:
        raise UserFacingError(f"legend correlation must be in [0, 1], got {c}")
    return base_rate + c * (1.0 - base_rate), base_rate * (1.0 - c)
