"""The paper's qualitative claims, each tested on the localisation numbers and given a computed verdict.

The paper judges its class activation maps by eye on a handful of cases and draws four conclusions from them
(its Figures 5, 7, 8, 10, 11 and section 5). Each becomes a :class:`Claim` tested on the per-image
localisation table (:func:`densenet_interp.evaluate.localisation.localisation_table`) and the frame
experiment (:func:`~densenet_interp.evaluate.localisation.frame_crop_table`):

* ``1a``/``1b`` legend bias of the wrist-only model in hardware cases, less for all extremities
  (:func:`legend_samples`);
* ``2a``/``2b`` the randomly initialised model finds the anatomy and the lesion worse
  (:func:`pretraining_samples`);
* ``3a``-``3d`` a frame draws attention, cropping it restores the anatomy (:func:`frame_samples`,
  :data:`FRAME_EXPERIMENTS`);
* ``4`` right for the wrong reasons (:func:`accuracy_claim`, :func:`right_for_wrong_reasons`).

A verdict comes from a 95 % patient-bootstrap interval (:mod:`densenet_interp.evaluate.stats`), whichever way
it comes out: *supported* when it lies on the claimed side of no effect, *contradicted* when on the other,
*inconclusive* otherwise, *not testable* on fewer than :data:`~densenet_interp.evaluate.stats.MIN_PATIENTS`
patients. Each interval-decided claim is first a :class:`ClaimSample` (the per-image numbers it is decided on),
so that one run (:func:`claim_from_sample`) and all training seeds at once
(:mod:`densenet_interp.evaluate.seeds`) decide it on the same images. :func:`claims_report` runs them all;
:func:`claims_markdown` and :func:`claims_table` write them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .measures import share_column
from .stats import MIN_PATIENTS, bootstrap_mean, direction, format_interval, paired_values, require_columns


@dataclass(frozen=True)
class Claim:
    """One qualitative statement of the paper, the test run on it, the numbers, and the computed verdict.

    ``supported``: True when the 95 % interval lies entirely on the claimed side, False when it lies entirely
    on the other side, None when it includes "no effect" or there were too few images or patients to test on
    (fewer than :data:`MIN_PATIENTS` patients).
    """

    name: str
    statement: str
    test: str
    evidence: dict[str, object] = field(default_factory=dict)
    supported: bool | None = None
    verdict: str = ""


@dataclass(frozen=True)
class ClaimSample:
    """The numbers a claim is decided on: per image, ``a`` and ``b`` (the effect is the mean of ``a - b``).

    ``values`` has columns ``path``, ``patient``, ``a`` and ``b``, only images where both are defined. ``a``/``b``
    are two model sets (or conditions) on the same image, or a region's share and its chance level (``labels``
    name them); ``sign`` is the side of 0 the paper claims. One sample per claim and training run: the claims
    table decides each on one run (:func:`claim_from_sample`), :mod:`densenet_interp.evaluate.seeds` on all
    seeds at once.
    """

    name: str
    statement: str
    test: str
    sign: int
    labels: tuple[str, str]
    effect: str  # "difference" or "excess"
    values: pd.DataFrame

    @property
    def differences(self) -> pd.Series:
        return self.values["a"] - self.values["b"]


_SAMPLE_COLUMNS = ["path", "patient", "a", "b"]


def _verdict(supported: bool | None, effect: str, n_images: int, n_patients: int) -> str:
    if n_images == 0:
        return (
            "not testable: no validation images of this kind with a defined share (none exist, or their CAMs "
            "carry no mass under this reading)"
        )
    if n_patients < MIN_PATIENTS:
        return f"not testable: {effect}; fewer than {MIN_PATIENTS} patients, too few for a bootstrap interval"
    return {
        True: f"supported: {effect}",
        False: f"contradicted: {effect}",
        None: f"inconclusive: {effect}; the 95 % interval includes no effect",
    }[supported]


def decide(low: float, high: float, sign: int, n_patients: int) -> bool | None:
    """:func:`direction`, or None when too few patients make the interval meaningless."""
    return direction(low, high, sign) if n_patients >= MIN_PATIENTS else None


def effect_text(
    sample: ClaimSample, a: float, b: float, diff: float, low: float, high: float, where: str
) -> str:
    """``wrist_random 0.41 vs wrist_pretrained 0.45, difference -0.04 [-0.07, -0.01] over ...`` (``where``)."""
    first, second = sample.labels
    return (
        f"{first} {format_interval(a)} vs {second} {format_interval(b)}, {sample.effect} "
        f"{format_interval(diff, low, high, signed=True)} over {where}"
    )


def claim_from_sample(sample: ClaimSample, n_boot: int, seed: int) -> Claim:
    """Decide a claim on one run: the mean of ``a - b`` and its 95 % patient-bootstrap interval."""
    rows = sample.values
    n_images, n_patients = len(rows), int(rows["patient"].nunique())
    if n_images == 0:
        return Claim(
            sample.name, sample.statement, sample.test, {"n_images": 0}, None, _verdict(None, "", 0, 0)
        )
    diff, low, high = bootstrap_mean(
        sample.differences.to_numpy(float), rows["patient"].to_numpy(), n_boot, seed
    )
    a, b = float(rows["a"].mean()), float(rows["b"].mean())
    evidence = {"a": a, "b": b, "diff": diff, "diff_low": low, "diff_high": high, "n_images": n_images,
                "n_patients": n_patients}  # fmt: skip
    supported = decide(low, high, sample.sign, n_patients)
    where = f"{n_images} images of {n_patients} patients"
    effect = effect_text(sample, a, b, diff, low, high, where)
    return Claim(sample.name, sample.statement, sample.test, evidence, supported,
                 _verdict(supported, effect, n_images, n_patients))  # fmt: skip


def _paired(per_image: pd.DataFrame, column: str, model_a: str, model_b: str, paths=None) -> pd.DataFrame:
    """``column`` of two model sets on the images both saw (optionally only ``paths``), both values finite."""
    values = paired_values(per_image, column, model_a, model_b, paths)
    return values[_SAMPLE_COLUMNS]


def _excess(frame: pd.DataFrame, region: str, mass: str) -> pd.DataFrame:
    """A region's share of the CAM's mass (``a``) beside its chance level (``b``), where the share is defined."""
    share = frame[share_column(region, mass)].to_numpy(float)
    rows = frame[np.isfinite(share)]
    return pd.DataFrame(
        {"path": rows["path"].to_numpy(), "patient": rows["patient"].to_numpy(),
         "a": rows[share_column(region, mass)].to_numpy(float), "b": rows[f"{region}_chance"].to_numpy(float)}
    )  # fmt: skip


def _paths(per_image: pd.DataFrame, model_set: str, keep: pd.Series | None = None) -> list[str]:
    rows = per_image[per_image["model_set"] == model_set]
    if keep is not None:
        rows = rows[keep.loc[rows.index]]
    return rows["path"].tolist()


def legend_samples(per_image: pd.DataFrame, mass: str) -> list[ClaimSample]:
    """Paper Figures 5 and 8: the wrist-only model leans on the text legend for hardware; the all-extremity less."""
    hardware = (
        (per_image["kind"] == "hardware")
        & (per_image["body_part"] == "XR_WRIST")
        & (per_image["legend_chance"] > 0)
    )
    wrist = per_image[(per_image["model_set"] == "wrist_pretrained") & hardware]
    test = "wrist validation images with hardware and a text legend"
    column = share_column("legend", mass)
    versus = _paired(per_image, column, "wrist_pretrained", "all_pretrained",
                     _paths(per_image, "wrist_pretrained", hardware))  # fmt: skip
    return [
        ClaimSample(
            "1a legend bias (wrist-only)",
            "The wrist-only pre-trained model's CAM leans on the text legend in hardware cases (Fig. 5).",
            f"{test}: legend share of the CAM's {mass} mass minus the legend's area share, wrist_pretrained",
            +1,
            ("legend share", "chance"),
            "excess",
            _excess(wrist, "legend", mass),
        ),  # fmt: skip
        ClaimSample(
            "1b less legend bias (all extremities)",
            "A model trained on all extremity types leans less on the legend in the same cases (Fig. 8).",
            f"{test}: legend share ({mass} mass), wrist_pretrained minus all_pretrained on the same images",
            +1,
            ("wrist_pretrained", "all_pretrained"),
            "difference",
            versus,
        ),  # fmt: skip
    ]


def pretraining_samples(per_image: pd.DataFrame, mass: str) -> list[ClaimSample]:
    """Paper Figure 7: without pre-training the model finds the wrist (and the lesion) worse."""
    lesion = per_image["lesion_chance"] > 0
    anatomy = _paired(per_image, share_column("anatomy", mass), "wrist_random", "wrist_pretrained")
    lesion_diff = _paired(per_image, share_column("lesion", mass), "wrist_random", "wrist_pretrained",
                          _paths(per_image, "wrist_pretrained", lesion))  # fmt: skip
    labels = ("wrist_random", "wrist_pretrained")
    return [
        ClaimSample(
            "2a anatomy (random init)",
            "The randomly initialised wrist model finds the anatomy worse than the pre-trained one (Fig. 7).",
            f"wrist validation images: anatomy share of the CAM's {mass} mass, wrist_random minus wrist_pretrained",
            -1,
            labels,
            "difference",
            anatomy,
        ),  # fmt: skip
        ClaimSample(
            "2b lesion (random init)",
            "... and puts less of its attention on the abnormality itself.",
            f"abnormal wrist validation images with a lesion mask: lesion share ({mass} mass), wrist_random minus "
            "wrist_pretrained",
            -1,
            labels,
            "difference",
            lesion_diff,
        ),  # fmt: skip
    ]


FRAME_EXPERIMENTS = {
    "finger_pretrained": ("3a", "3b", "framed finger validation images", "Fig. 10", "Fig. 11"),
    "all_pretrained": ("3c", "3d", "framed validation images of every body part", "Fig. 10", "Fig. 11, whose crop "
                       "is explained by the all-extremity model"),
}  # fmt: skip
"""Model sets the frame experiment runs on: claim numbers, the images, and the paper's figures."""


def frame_samples(frame_crop: pd.DataFrame | None, mass: str) -> list[ClaimSample]:
    """Paper Figures 10-11: a frame draws the model's attention; cropping it restores the anatomy.

    One pair of claims per model set of :data:`FRAME_EXPERIMENTS`, on its rows of ``frame_crop`` (the output
    of :func:`~densenet_interp.evaluate.localisation.frame_crop_table`, one or several model sets
    concatenated). Cropping enlarges the anatomy's share of the image, so the second claim compares the anatomy
    share's excess over its area share.
    """
    samples = []
    empty = pd.DataFrame(columns=_SAMPLE_COLUMNS)
    for model_set, (first, second, images, fig_frame, fig_crop) in FRAME_EXPERIMENTS.items():
        rows = (
            empty
            if frame_crop is None or frame_crop.empty
            else frame_crop[frame_crop["model_set"] == model_set]
        )
        if rows.empty:
            as_is, crop = empty, empty
        else:
            as_is_rows = rows[rows["condition"] == "as_is"]
            excess = rows[share_column("anatomy", mass)] - rows["anatomy_chance"]
            paired = rows.assign(model_set=rows["condition"], anatomy_excess=excess)
            as_is = _excess(as_is_rows, "frame", mass)
            crop = _paired(paired, "anatomy_excess", "cropped", "as_is")
        samples += [
            ClaimSample(
                f"{first} frame draws attention ({model_set})",
                f"An image frame draws the model's attention away from the anatomy ({fig_frame}).",
                f"{images} as they are: frame share of the CAM's {mass} mass minus the frame's area share, "
                f"{model_set}",
                +1,
                ("frame share", "chance"),
                "excess",
                as_is,
            ),  # fmt: skip
            ClaimSample(
                f"{second} cropping restores anatomy ({model_set})",
                f"Cropping the frame restores attention to the anatomy ({fig_crop}).",
                f"the same images auto-cropped (frames.crop_frame) vs as they are: anatomy share ({mass} mass) minus "
                "the anatomy's area share (which grows with the crop), cropped minus as is",
                +1,
                ("cropped", "as is"),
                "difference",
                crop,
            ),  # fmt: skip
        ]
    return samples


def claim_samples(per_image: pd.DataFrame, frame_crop: pd.DataFrame | None, mass: str) -> list[ClaimSample]:
    """The samples of every interval-decided claim (1a-3d), in the claims table's order."""
    share_column("lesion", mass)  # validates ``mass``
    require_columns(
        per_image, ("model_set", "path", "patient", "kind", "body_part", "label", "correct"), "per-image"
    )
    return [
        *legend_samples(per_image, mass),
        *pretraining_samples(per_image, mass),
        *frame_samples(frame_crop, mass),
    ]


def wrong_focus(per_image: pd.DataFrame, mass: str = "relative") -> pd.Series:
    """Images whose CAM looks at the wrong thing: lesion share below chance, or most mass on legend and frame.

    Only images with a lesion mask qualify; an image whose share is undefined under ``mass`` is not counted.
    """
    lesion = per_image[share_column("lesion", mass)]
    below = lesion < per_image["lesion_chance"]
    distracted = (per_image[share_column("legend", mass)] + per_image[share_column("frame", mass)]) > 0.5
    return (below | distracted) & (per_image["lesion_chance"] > 0) & lesion.notna()


def right_for_wrong_reasons(per_image: pd.DataFrame, mass: str = "relative") -> pd.DataFrame:
    """Per model set: accuracy, the majority-class rate, and correctly classified abnormal images with wrong focus."""
    rows = []
    for model_set in pd.unique(per_image["model_set"]):
        frame = per_image[per_image["model_set"] == model_set]
        hits = frame[(frame["label"] == 1) & frame["correct"] & (frame["lesion_chance"] > 0)]
        lesion = hits[share_column("lesion", mass)]
        elsewhere = hits[share_column("legend", mass)] + hits[share_column("frame", mass)]
        rows.append(
            {
                "model_set": model_set,
                "mass": mass,
                "accuracy": float(frame["correct"].mean()),
                "majority_rate": float(max(frame["label"].mean(), 1 - frame["label"].mean())),
                "correct_abnormal": int(lesion.notna().sum()),
                "lesion_below_chance": int((lesion < hits["lesion_chance"]).sum()),
                "mostly_legend_or_frame": int((elsewhere > 0.5).sum()),
                "wrong_focus": int(wrong_focus(hits, mass).sum()),
            }
        )
    return pd.DataFrame(rows)


def accuracy_claim(per_image: pd.DataFrame, mass: str) -> Claim:
    """Paper section 5: a statistically accurate model can detect abnormality from the wrong features.

    Counted on the model sets that beat the majority-class rate (a constant predictor): correctly classified
    abnormal images whose CAM puts less mass on the lesion than its area share, or most mass on legend/frame.
    """
    table = right_for_wrong_reasons(per_image, mass)
    accurate = table[table["accuracy"] > table["majority_rate"]]
    evidence: dict[str, object] = {
        f"{r.model_set}: wrong focus / correct abnormal": f"{r.wrong_focus}/{r.correct_abnormal}"
        for r in table.itertuples()
    }
    evidence.update({f"{r.model_set}: accuracy": round(r.accuracy, 3) for r in table.itertuples()})
    n_correct = int(accurate["correct_abnormal"].sum())
    n_wrong = int(accurate["wrong_focus"].sum())
    if accurate.empty or n_correct == 0:
        supported = None
        verdict = (
            "not testable: no model set beats the majority-class rate with correctly classified abnormal images "
            "whose share is defined"
        )
    else:
        supported = n_wrong > 0
        verdict = (
            f"{'supported' if supported else 'not observed'}: {n_wrong} of {n_correct} correctly classified "
            f"abnormal images of the {len(accurate)} model set(s) above the majority-class rate look elsewhere "
            f"({', '.join(accurate['model_set'])})"
        )
    return Claim(
        "4 right for the wrong reasons",
        "A model that is accurate by statistical metrics can detect abnormality from the wrong features (sec. 5).",
        f"correctly classified abnormal validation images (model sets more accurate than the majority class) whose "
        f"lesion share ({mass} mass) is below the lesion's area share or whose mass is mostly on legend and frame",
        evidence,
        supported,
        verdict,
    )


def accuracy_sample(per_image: pd.DataFrame, mass: str) -> ClaimSample:
    """Claim 4 as a sample: per correctly classified abnormal image (with a lesion mask and a defined share) of
    the model sets above the majority-class rate, ``a`` = 1 if it looks elsewhere (:func:`wrong_focus`), else 0.

    Pooled over seeds (:mod:`densenet_interp.evaluate.seeds`), the claim is supported when the interval of that
    rate excludes 0; one run's claims table uses :func:`accuracy_claim` (does any such image exist).
    """
    table = right_for_wrong_reasons(per_image, mass)
    accurate = set(table.loc[table["accuracy"] > table["majority_rate"], "model_set"])
    hits = per_image[
        per_image["model_set"].isin(accurate)
        & (per_image["label"] == 1)
        & per_image["correct"].astype(bool)
        & (per_image["lesion_chance"] > 0)
        & per_image[share_column("lesion", mass)].notna()
    ]
    values = pd.DataFrame(
        {"path": hits["path"].to_numpy(), "patient": hits["patient"].to_numpy(),
         "a": wrong_focus(hits, mass).to_numpy(float), "b": np.zeros(len(hits))}
    )  # fmt: skip
    return ClaimSample(
        "4 right for the wrong reasons",
        "A model that is accurate by statistical metrics can detect abnormality from the wrong features (sec. 5).",
        f"correctly classified abnormal validation images (model sets more accurate than the majority class): share "
        f"whose lesion share ({mass} mass) is below the lesion's area share or whose mass is mostly on legend and "
        "frame",
        +1,
        ("wrong focus", "none"),
        "share looking elsewhere",
        values,
    )


def claims_report(
    per_image: pd.DataFrame,
    frame_crop: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    mass: str = "relative",
) -> list[Claim]:
    """The paper's qualitative claims, each with a verdict computed from the localisation numbers (one reading)."""
    samples = claim_samples(per_image, frame_crop, mass)
    return [*(claim_from_sample(s, n_boot, seed) for s in samples), accuracy_claim(per_image, mass)]


def claims_markdown(claims_by_mass: Mapping[str, list[Claim]], data_label: str) -> str:
    """The claims as Markdown, one table per mass reading: statement, test and computed verdict (first word bold)."""
    lines = [
        "# The paper's qualitative claims, tested on the localisation numbers",
        "",
        "Verdicts come from 95 % percentile-bootstrap intervals resampling patients: *supported* when the interval "
        "lies on the claimed side of no effect, *contradicted* when it lies on the other side, *inconclusive* "
        "otherwise. Each claim is tested under both readings of the CAM as a mass (*relative*: above the map's "
        "own mean, as the paper reads its maps; *positive*: above 0).",
    ]
    for mass, claims in claims_by_mass.items():
        lines += [
            "",
            f"## CAM mass: {mass}",
            "",
            "| claim | paper | test | verdict |",
            "| --- | --- | --- | --- |",
        ]
        for claim in claims:
            head, _, rest = claim.verdict.partition(":")
            cells = [claim.name, claim.statement, claim.test, f"**{head}**:{rest}"]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += ["", f"Data: {data_label}.", ""]
    return "\n".join(lines)


def claims_table(claims_by_mass: Mapping[str, list[Claim]]) -> pd.DataFrame:
    """The claims as a table (one row per claim and mass reading) for CSV output."""
    return pd.DataFrame(
        [
            {"mass": mass, "claim": c.name, "supported": c.supported, "verdict": c.verdict, "test": c.test}
            for mass, claims in claims_by_mass.items()
            for c in claims
        ]
    )
