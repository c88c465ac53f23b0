"""The paper's case figures (Figures 4-11): which image, which model set, and what the paper saw.

The cases file ``cases.json`` (beside this module; ``$DENSENET_INTERP_CASES`` names another copy) holds one
entry per figure: the model set, the phantom case that stands in for the paper's radiograph on the offline
profiles, the MURA path for the ``paper`` profile (left empty: the paper does not name its files; users with
MURA choose with :func:`candidate_images`), whether the frame is cropped (Figure 11), and what the paper
reports (its caption verbatim and a paraphrase of section 4), used in the figure notebook's markdown.

:func:`aligned_masks` moves the phantom's ground-truth masks exactly as a figure's image was moved (crop,
resize, augmentation); :func:`densenet_interp.evaluate.case_report.describe_run` measures a run's maps on
them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..models.inference import THRESHOLD
from ..phantom.masks import REGIONS, resize_mask
from ..profiles import BODY_PARTS, MODEL_SETS, Profile

CASES_FILE = Path(__file__).with_name("cases.json")
CASES_ENV = "DENSENET_INTERP_CASES"
OUTCOMES = ("TP", "FN", "FP", "TN")


@dataclass(frozen=True)
class Case:
    """One case figure of the paper; fields as in ``cases.json`` (see its ``about``)."""

    figure: int
    case: int
    title: str
    model_set: str
    body_part: str
    label: int
    phantom_case: str
    seed: int
    augmentation_seed: int
    mura_path: str | None
    mura_note: str
    crop_frame: bool
    paper_prediction: str | None
    paper_cam_focus: str | None
    paper_caption: str
    paper_observation: str

    @property
    def stem(self) -> str:
        """The figure's file stem under ``results/<profile>/figures/``: ``figure04`` ... ``figure11``."""
        return f"figure{self.figure:02d}"


_FIELD_TYPES = {
    "figure": int,
    "case": int,
    "title": str,
    "model_set": str,
    "body_part": str,
    "label": int,
    "phantom_case": str,
    "seed": int,
    "augmentation_seed": int,
    "mura_path": (str, type(None)),
    "mura_note": str,
    "crop_frame": bool,
    "paper_prediction": (str, type(None)),
    "paper_cam_focus": (str, type(None)),
    "paper_caption": str,
    "paper_observation": str,
}


def _check_entry(entry: object, number: int, path: Path) -> Case:
    """One validated entry; DataError naming the file, the entry and the problem otherwise."""
    where = f"entry {number}"
    if not isinstance(entry, dict):
        raise DataError(
            f"{where} is a {type(entry).__name__}; expected an object with keys {list(_FIELD_TYPES)}", path
        )
    where = f"entry {number} (figure {entry.get('figure', '?')})"
    missing = [key for key in _FIELD_TYPES if key not in entry]
    unknown = [key for key in entry if key not in _FIELD_TYPES]
    if missing or unknown:
        raise DataError(
            f"{where}: missing keys {missing}, unknown keys {unknown}; expected {list(_FIELD_TYPES)}", path
        )
    for key, kind in _FIELD_TYPES.items():
        value = entry[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise DataError(f"{where}: {key} is {value!r}; expected {kind}", path)
    checks = (
        ("model_set", entry["model_set"] in MODEL_SETS, list(MODEL_SETS)),
        ("body_part", entry["body_part"] in BODY_PARTS, list(BODY_PARTS)),
        ("label", entry["label"] in (0, 1), [0, 1]),
        (
            "paper_prediction",
            entry["paper_prediction"] in (None, "normal", "abnormal"),
            [None, "normal", "abnormal"],
        ),
        ("paper_cam_focus", entry["paper_cam_focus"] in (None, *REGIONS), [None, *REGIONS]),
    )
    for key, ok, allowed in checks:
        if not ok:
            raise DataError(f"{where}: {key} is {entry[key]!r}; expected one of {allowed}", path)
    return Case(**{f.name: entry[f.name] for f in fields(Case)})


def load_cases(path: str | Path | None = None) -> list[Case]:
    """Read and validate the cases file (default: ``$DENSENET_INTERP_CASES`` or the packaged ``cases.json``)."""
    path = Path(path or os.environ.get(CASES_ENV) or CASES_FILE)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            "cases file not found; expected a JSON file like densenet_interp/explain/cases.json", path
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path, exc.lineno) from None
    entries = document.get("cases") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataError('expected an object with a non-empty list "cases"', path)
    cases = [_check_entry(entry, number, path) for number, entry in enumerate(entries, start=1)]
    figures = [case.figure for case in cases]
    if len(set(figures)) != len(figures):
        raise DataError(f"figure numbers repeat ({figures}); expected one entry per figure", path)
    return cases


def get_case(figure: int, path: str | Path | None = None) -> Case:
    """The entry of one figure (4-11 in the packaged file)."""
    cases = load_cases(path)
    for case in cases:
        if case.figure == int(figure):
            return case
    raise ValueError(f"no case for figure {figure}; the cases file has figures {[c.figure for c in cases]}")


def case_image(
    case: Case, profile: Profile, mura_root: str | Path | None = None
) -> tuple[np.ndarray, dict | None]:
    """The case's radiograph as ``uint8 (H, W)``, with the phantom's annotation (None on real MURA).

    Phantom profiles render ``case.phantom_case`` at ``profile.phantom_long_side`` with ``case.seed``
    (``mura_root`` is ignored). The ``paper`` profile reads ``case.mura_path`` under ``mura_root`` (the folder
    that contains ``MURA-v1.1``, or that folder itself); DataError if the path has not been chosen yet.
    """
    if profile.phantom:
        from ..phantom import render_case

        image, annotation = render_case(case.phantom_case, profile.phantom_long_side, seed=case.seed)
        return image, annotation
    from ..data.images import read_radiograph

    if case.mura_path is None:
        raise DataError(
            f"figure {case.figure} has no MURA image yet ({case.mura_note}); set its mura_path in the cases file",
            os.environ.get(CASES_ENV) or CASES_FILE,
        )
    if mura_root is None:
        raise DataError(
            f"figure {case.figure}: no MURA folder given; pass mura_root (the folder with MURA-v1.1)"
        )
    root = Path(mura_root)
    candidates = [root / case.mura_path]
    if root.name == "MURA-v1.1":
        candidates.append(root.parent / case.mura_path)
    path = next((p for p in candidates if p.is_file()), candidates[0])
    return read_radiograph(path), None


# ----------------------------------------------------------------------------------------------------------
# Choosing real MURA images
# ----------------------------------------------------------------------------------------------------------
def candidate_images(
    predictions: pd.DataFrame, body_part: str, outcome: str, threshold: float = THRESHOLD
) -> pd.DataFrame:
    """Validation images of one body part with one outcome, most confident first, to pick cases from.

    ``predictions`` is a predictions table (``results/<profile>/predictions/<model_set>.csv``: ``path``,
    ``body_part``, ``label``, ``probability``, ...). ``outcome`` is TP, FN, FP or TN at ``threshold`` (the
    paper's 0.5: above is abnormal). Adds ``predicted``, ``outcome`` and ``confidence`` (the probability of
    the predicted class) and sorts by confidence, descending.
    """
    needed = {"path", "body_part", "label", "probability"}
    if not needed <= set(predictions.columns):
        raise ValueError(
            f"predictions table has columns {list(predictions.columns)}; expected at least {sorted(needed)}"
        )
    part = body_part.upper() if body_part.upper().startswith("XR_") else f"XR_{body_part.upper()}"
    if part not in BODY_PARTS:
        raise ValueError(f"unknown body part {body_part!r}; expected one of {', '.join(BODY_PARTS)}")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")
    table = predictions[predictions["body_part"] == part].copy()
    predicted = (table["probability"] > threshold).astype(int)
    label = table["label"].astype(int)
    table["predicted"] = predicted
    table["outcome"] = np.select(
        [(predicted == 1) & (label == 1), (predicted == 0) & (label == 1), (predicted == 1) & (label == 0)],
        ["TP", "FN", "FP"],
        default="TN",
    )
    table["confidence"] = np.where(predicted == 1, table["probability"], 1.0 - table["probability"])
    chosen = table[table["outcome"] == outcome]
    return chosen.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------------
# Ground truth aligned with a figure's image
# ----------------------------------------------------------------------------------------------------------
def _replayed_crop_box(case: Case, annotation: dict, image_shape: tuple[int, int], frame: np.ndarray | None):
    """The box ``frames.crop_frame`` cut from the case image, found again without being handed the image.

    The phantom image is rendered again (same case, seed and long side: the same pixels) and cropped the same
    way, so the box is exact. Failing that, the detector runs on the ground-truth frame drawn as an image,
    which agrees to 1-3 px (the frame mask is a band a little wider than the line).
    """
    from ..data.frames import crop_frame

    if annotation.get("case") == case.phantom_case:
        from ..phantom import render_case

        image, _ = render_case(case.phantom_case, max(image_shape), seed=case.seed)
        if image.shape == tuple(image_shape):
            return crop_frame(image)[1]
    if frame is not None and frame.any():
        return crop_frame(frame.astype(np.uint8) * 255)[1]
    return None


def aligned_masks(
    case: Case,
    annotation: dict,
    image_shape: tuple[int, int],
    image_size: int,
    *,
    augmented_seed: int | None = None,
    crop_box: tuple[int, int, int, int] | None = None,
) -> dict[str, np.ndarray]:
    """The phantom's ground-truth masks moved exactly as the figure's image was: crop, resize, augment.

    ``image_shape`` is the rendered image's ``(H, W)``. The crop is ``crop_box`` if given; for a case with
    ``crop_frame`` and no box, the box is found again (:func:`_replayed_crop_box`). The
    augmentation is :func:`~densenet_interp.data.augment.augment_for_display` with ``augmented_seed`` (stateless: the same flip and
    rotation as the image). Returns boolean ``(S, S)`` masks for the regions present, plus ``background``.
    """
    from ..phantom import masks_for

    masks = {
        name: np.asarray(mask, dtype=bool) for name, mask in masks_for(annotation, size=image_shape).items()
    }
    if case.crop_frame and crop_box is None:
        crop_box = _replayed_crop_box(case, annotation, image_shape, masks.get("frame"))
    if crop_box is not None:
        top, bottom, left, right = crop_box
        masks = {name: mask[top:bottom, left:right] for name, mask in masks.items()}
    masks = {name: resize_mask(mask, image_size) for name, mask in masks.items()}
    if augmented_seed is not None:
        from ..data.augment import augment_for_display

        masks = {
            name: augment_for_display(mask.astype(np.uint8) * 255, seed=augmented_seed) > 127
            for name, mask in masks.items()
        }
    present = {name: masks[name] for name in REGIONS if name in masks and masks[name].any()}
    covered = np.zeros((image_size, image_size), dtype=bool)
    for mask in present.values():
        covered |= mask
    present["background"] = ~covered
    return present


# ----------------------------------------------------------------------------------------------------------
# Case images on real MURA: pinned by the user, else chosen by a written rule
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """How one figure's image is chosen from the validation predictions and the image evidence.

    Candidates are the validation images of ``body_part`` with the first ``outcome`` (of the figure's model
    set, at the paper's 0.5) that has any image meeting the evidence wanted (``metal``/``frame``: True must be
    detected, False must not be, None either way); within it ``order`` decides: ``confidence`` (the predicted
    class's probability, highest first) or ``metal`` (the largest metal component first). ``same_as`` takes
    another figure's image instead (Figures 7 and 8 show Figure 5's image under other models; 11 crops 10's).
    When no image meets the rule, ``keep`` says what matters more to the figure: its ``outcome`` (the evidence
    requirement is dropped first) or its ``evidence`` (any outcome is allowed first).
    """

    text: str
    body_part: str = "XR_WRIST"
    outcomes: tuple[str, ...] = ("TP",)
    metal: bool | None = None
    frame: bool | None = None
    order: str = "confidence"
    same_as: int | None = None
    keep: str = "outcome"  # relaxing a rule nobody meets: drop the evidence first ("outcome") or the outcome


AUTO_RULES: dict[int, Rule] = {
    4: Rule(
        "the wrist true positive of wrist_pretrained with the highest p(abnormal), no metal and no frame "
        "detected (a fracture-like case)",
        metal=False,
        frame=False,
    ),
    5: Rule(
        "the wrist true positive of wrist_pretrained with the most metal detected (hardware)",
        metal=True,
        order="metal",
        keep="evidence",
    ),
    6: Rule(
        "the abnormal wrist that wrist_pretrained calls normal with the lowest p(abnormal), no metal "
        "detected (a missed non-hardware abnormality)",
        outcomes=("FN",),
        metal=False,
    ),
    7: Rule("Figure 5's image", same_as=5),
    8: Rule("Figure 5's image", same_as=5),
    9: Rule(
        "the abnormal finger image with the most metal detected, true positives of finger_pretrained first",
        body_part="XR_FINGER",
        outcomes=("TP", "FN"),
        metal=True,
        order="metal",
        keep="evidence",
    ),
    10: Rule(
        "the finger image with a detected frame: finger_pretrained's true positives first, then its false "
        "positives, misses and true negatives, the most confident first",
        body_part="XR_FINGER",
        outcomes=("TP", "FP", "FN", "TN"),
        frame=True,
    ),
    11: Rule("Figure 10's image, cropped to its frame", same_as=10),
}
"""The written rule per figure, close to what the paper shows (its section 4 and appendix A.2)."""


@dataclass(frozen=True)
class CaseImage:
    """The image a case figure shows and where it came from."""

    image: np.ndarray  # uint8 (H, W), before any crop
    annotation: dict | None  # the phantom's annotation (phantom profiles), else None
    path: (
        str | None
    )  # the MURA path (relative to the folder that contains MURA-v1.1), None for a phantom render
    label: int | None  # the ground truth when known
    source: str  # how it was chosen, in words: shown in the figure's title and notebook


def parse_pins(pins: str) -> dict[int, str]:
    """``"5=MURA-v1.1/valid/...png;9=/abs/x.png"`` (what ``make ... FIGURE5_IMAGE=...`` passes) as a dict."""
    result: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in pins.split(";"))):
        figure, sep, path = item.partition("=")
        if not sep or not figure.strip().isdigit() or not path.strip():
            raise ValueError(f"pin {item!r}: expected FIGURE=IMAGE, e.g. 5=MURA-v1.1/valid/.../image1.png")
        result[int(figure)] = path.strip()
    return result


def _mura_parent(mura_root: str | Path) -> Path:
    root = Path(mura_root)
    return root.parent if root.name == "MURA-v1.1" else root


def _predictions(predictions_dir: Path, model_set: str) -> pd.DataFrame:
    path = Path(predictions_dir) / f"{model_set}.csv"
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(
            "no predictions of this model set yet; the case figures are chosen from them (run notebook 30 or "
            "`make tables` first)",
            path,
        ) from None


def auto_select(
    figure: int, mura_root: str | Path, predictions_dir: str | Path, cases_path: str | Path | None = None
) -> tuple[str, int, str]:
    """``(MURA path, label, rule text)`` of the image :data:`AUTO_RULES` chooses for ``figure``.

    When no image meets the rule, it is relaxed in the order its ``keep`` says (the evidence requirement or the
    outcomes first, then both) and the returned text says so: the figure is still drawn, and says what it shows.
    """
    from ..data.frames import detect_frame
    from ..data.images import read_radiograph
    from ..data.metal import find_metal

    rule = AUTO_RULES.get(int(figure))
    if rule is None:
        raise ValueError(f"no selection rule for figure {figure}; rules exist for {sorted(AUTO_RULES)}")
    if rule.same_as is not None:
        path, label, text = auto_select(rule.same_as, mura_root, predictions_dir, cases_path)
        return path, label, f"{rule.text} ({text})"
    case = get_case(figure, cases_path)
    parent = _mura_parent(mura_root)
    table = _predictions(Path(predictions_dir), case.model_set)
    evidence: dict[str, tuple[float, bool]] = {}

    def look(path: str) -> tuple[float, bool]:
        if path not in evidence:
            image = read_radiograph(parent / path)
            evidence[path] = (find_metal(image).area_fraction, detect_frame(image) is not None)
        return evidence[path]

    def meets(path: str, metal: bool | None, frame: bool | None) -> bool:
        if metal is None and frame is None:
            return True
        area, framed = look(path)
        return (metal is None or (area > 0) == metal) and (frame is None or framed == frame)

    attempts = [(rule.outcomes, rule.metal, rule.frame, "")]
    evidence_wanted = rule.metal is not None or rule.frame is not None
    without_evidence = (rule.outcomes, None, None, "; relaxed: no image met the evidence rule")
    any_outcome = (
        OUTCOMES,
        rule.metal,
        rule.frame,
        "; relaxed: no image of these outcomes, any outcome taken",
    )
    if evidence_wanted:
        attempts += (
            [any_outcome, without_evidence] if rule.keep == "evidence" else [without_evidence, any_outcome]
        )
    attempts.append((OUTCOMES, None, None, "; relaxed: no image met the rule, any image taken"))
    for outcomes, metal, frame, note in attempts:
        for outcome in outcomes:
            candidates = candidate_images(table, rule.body_part, outcome)
            paths = [p for p in candidates["path"] if meets(p, metal, frame)]
            if not paths:
                continue
            if rule.order == "metal" and metal:
                paths = sorted(paths, key=lambda p: -look(p)[0])  # stable: ties keep the confidence order
            chosen = paths[0]
            label = int(candidates.loc[candidates["path"] == chosen, "label"].iloc[0])
            return chosen, label, f"{rule.text}{note}"
    raise DataError(
        f"figure {figure}: the predictions have no {rule.body_part} validation image to choose from",
        Path(predictions_dir) / f"{case.model_set}.csv",
    )


def select_case_image(
    case: Case,
    profile: Profile,
    mura_root: str | Path | None,
    predictions_dir: str | Path | None = None,
    pins: str = "",
    cases_path: str | Path | None = None,
) -> CaseImage:
    """The image of a case figure, by precedence: a pin (``pins``: ``make ... FIGUREn_IMAGE=...``), then the
    cases file's ``mura_path``, then :func:`auto_select` (real MURA), or the phantom's case (phantom profiles).

    A pinned or listed path is relative to the folder that contains ``MURA-v1.1`` (or absolute). A pin of the
    figure a rule follows (``same_as``: 5 for 7 and 8, 10 for 11) is followed too.
    """
    from ..data.images import read_radiograph

    pinned = parse_pins(pins)
    rule = AUTO_RULES.get(case.figure)
    followed = rule.same_as if rule is not None and rule.same_as is not None else None
    if profile.phantom and case.figure not in pinned:
        image, annotation = case_image(case, profile)
        return CaseImage(image, annotation, None, case.label, f"phantom case '{case.phantom_case}'")
    if mura_root is None and not profile.phantom:
        raise DataError(
            f"figure {case.figure}: no MURA folder given; pass mura_root (the folder with MURA-v1.1)"
        )
    parent = _mura_parent(mura_root) if mura_root is not None else Path(".")
    chosen: tuple[str, str] | None = None
    if case.figure in pinned:
        chosen = (pinned[case.figure], f"pinned: FIGURE{case.figure}_IMAGE")
    elif followed is not None and followed in pinned:
        chosen = (pinned[followed], f"pinned: FIGURE{followed}_IMAGE (Figure {followed}'s image)")
    elif case.mura_path is not None:
        chosen = (case.mura_path, "pinned in the cases file")
    elif followed is not None and get_case(followed, cases_path).mura_path is not None:
        chosen = (
            get_case(followed, cases_path).mura_path,
            f"Figure {followed}'s image, pinned in the cases file",
        )
    if chosen is not None:
        path, source = chosen
        full = Path(path) if Path(path).is_absolute() else parent / path
        label = None
        if predictions_dir is not None and (Path(predictions_dir) / f"{case.model_set}.csv").is_file():
            table = _predictions(Path(predictions_dir), case.model_set)
            row = table[table["path"] == path]
            label = int(row["label"].iloc[0]) if len(row) else None
        return CaseImage(read_radiograph(full), None, path, label, source)
    if predictions_dir is None:
        raise DataError(f"figure {case.figure}: no image pinned and no predictions to choose one from")
    path, label, text = auto_select(case.figure, mura_root, predictions_dir, cases_path)
    return CaseImage(read_radiograph(parent / path), None, path, label, f"auto-selected: {text}")
