"""The paper's qualitative claims, each tested on the localisation numbers and given a computed verdict.

The paper judges its class activation maps by eye on a handful of cases and draws four conclusions from them
(its Figures 5, 7, 8, 10, 11 and section 5). Each becomes a :class:`Claim` tested on the per-image
localisation table (:func:`densenet_interp.evaluate.localisation.localisation_table`) and the frame
experiment (:func:`~densenet_interp.evaluate.localisation.frame_crop_table`):

* ``1a``/``1b`` legend bias of the wrist-only model in hardware cases, less for all extremities
  (:func:`legend_claims`);
* ``2a``/``2b`` the randomly initialised model finds the anatomy and the lesion worse
  (:func:`pretraining_claims`);
* ``3a``-``3d`` a frame draws attention, cropping it restores the anatomy (:func:`frame_claims`,
  :data:`FRAME_EXPERIMENTS`);
* ``4`` right for the wrong reasons (:func:`accuracy_claim`, :func:`right_for_wrong_reasons`).

A verdict comes from a 95 % patient-bootstrap interval (:mod:`densenet_interp.evaluate.stats`), whichever way
it comes out: *supported* when it lies on the claimed side of no effect, *contradicted* when on the other,
*inconclusive* otherwise, *not testable* on fewer than :data:`~densenet_interp.evaluate.stats.MIN_PATIENTS`
patients. :func:`claims_report` runs them all; :func:`claims_markdown` and :func:`claims_table` write them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from .localisation import summary_row
from .measures import share_column
from .stats import MIN_PATIENTS, direction, format_interval, paired_difference, require_columns


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


def _decided(low: float, high: float, sign: int, n_patients: int) -> bool | None:
    """:func:`direction`, or None when too few patients make the interval meaningless."""
    return direction(low, high, sign) if n_patients >= MIN_PATIENTS else None


def _diff_claim(
    name: str, statement: str, test: str, sign: int, result: dict[str, float], labels: tuple[str, str]
) -> Claim:
    """A claim decided by the sign of a paired difference ``a - b`` (``sign`` is the claimed side)."""
    a, b = labels
    n_images, n_patients = result["n_images"], result["n_patients"]
    effect = (
        f"{a} {format_interval(result['a'])} vs {b} {format_interval(result['b'])}, difference "
        f"{format_interval(result['diff'], result['diff_low'], result['diff_high'], signed=True)} over "
        f"{n_images} images of {n_patients} patients"
    )
    supported = _decided(result["diff_low"], result["diff_high"], sign, n_patients)
    return Claim(
        name, statement, test, dict(result), supported, _verdict(supported, effect, n_images, n_patients)
    )


def _excess_claim(
    name: str, statement: str, test: str, frame: pd.DataFrame, region: str, mass: str, n_boot: int, seed: int
) -> Claim:
    """A claim that the mass share of ``region`` exceeds its chance level on the images of ``frame``."""
    column = share_column(region, mass)
    stats = summary_row(frame, column, f"{region}_chance", n_boot, seed) if len(frame) else {}
    n_images, n_patients = int(stats.get("n_images", 0)), int(stats.get("n_patients", 0))
    if n_images == 0:
        return Claim(name, statement, test, {"n_images": 0}, None, _verdict(None, "", 0, 0))
    effect = (
        f"{region} share {format_interval(stats['share'])} vs chance {format_interval(stats['chance'])}, excess "
        f"{format_interval(stats['excess'], stats['excess_low'], stats['excess_high'], signed=True)} over "
        f"{n_images} images of {n_patients} patients"
    )
    supported = _decided(stats["excess_low"], stats["excess_high"], +1, n_patients)
    return Claim(name, statement, test, stats, supported, _verdict(supported, effect, n_images, n_patients))


def _paths(per_image: pd.DataFrame, model_set: str, keep: pd.Series | None = None) -> list[str]:
    rows = per_image[per_image["model_set"] == model_set]
    if keep is not None:
        rows = rows[keep.loc[rows.index]]
    return rows["path"].tolist()


def legend_claims(per_image: pd.DataFrame, mass: str, n_boot: int, seed: int) -> list[Claim]:
    """Paper Figures 5 and 8: the wrist-only model leans on the text legend for hardware; the all-extremity less."""
    hardware = (
        (per_image["kind"] == "hardware")
        & (per_image["body_part"] == "XR_WRIST")
        & (per_image["legend_chance"] > 0)
    )
    wrist = per_image[(per_image["model_set"] == "wrist_pretrained") & hardware]
    test = "wrist validation images with hardware and a text legend"
    column = share_column("legend", mass)
    versus = paired_difference(per_image, column, "wrist_pretrained", "all_pretrained",
                               _paths(per_image, "wrist_pretrained", hardware), n_boot, seed)  # fmt: skip
    return [
        _excess_claim(
            "1a legend bias (wrist-only)",
            "The wrist-only pre-trained model's CAM leans on the text legend in hardware cases (Fig. 5).",
            f"{test}: legend share of the CAM's {mass} mass minus the legend's area share, wrist_pretrained",
            wrist,
            "legend",
            mass,
            n_boot,
            seed,
        ),  # fmt: skip
        _diff_claim(
            "1b less legend bias (all extremities)",
            "A model trained on all extremity types leans less on the legend in the same cases (Fig. 8).",
            f"{test}: legend share ({mass} mass), wrist_pretrained minus all_pretrained on the same images",
            +1,
            versus,
            ("wrist_pretrained", "all_pretrained"),
        ),  # fmt: skip
    ]


def pretraining_claims(per_image: pd.DataFrame, mass: str, n_boot: int, seed: int) -> list[Claim]:
    """Paper Figure 7: without pre-training the model finds the wrist (and the lesion) worse."""
    lesion = per_image["lesion_chance"] > 0
    anatomy = paired_difference(per_image, share_column("anatomy", mass), "wrist_random", "wrist_pretrained",
                                None, n_boot, seed)  # fmt: skip
    lesion_diff = paired_difference(per_image, share_column("lesion", mass), "wrist_random", "wrist_pretrained",
                                    _paths(per_image, "wrist_pretrained", lesion), n_boot, seed)  # fmt: skip
    labels = ("wrist_random", "wrist_pretrained")
    return [
        _diff_claim(
            "2a anatomy (random init)",
            "The randomly initialised wrist model finds the anatomy worse than the pre-trained one (Fig. 7).",
            f"wrist validation images: anatomy share of the CAM's {mass} mass, wrist_random minus wrist_pretrained",
            -1,
            anatomy,
            labels,
        ),  # fmt: skip
        _diff_claim(
            "2b lesion (random init)",
            "... and puts less of its attention on the abnormality itself.",
            f"abnormal wrist validation images with a lesion mask: lesion share ({mass} mass), wrist_random minus "
            "wrist_pretrained",
            -1,
            lesion_diff,
            labels,
        ),  # fmt: skip
    ]


FRAME_EXPERIMENTS = {
    "finger_pretrained": ("3a", "3b", "framed finger validation images", "Fig. 10", "Fig. 11"),
    "all_pretrained": ("3c", "3d", "framed validation images of every body part", "Fig. 10", "Fig. 11, whose crop "
                       "is explained by the all-extremity model"),
}  # fmt: skip
"""Model sets the frame experiment runs on: claim numbers, the images, and the paper's figures."""


def frame_claims(frame_crop: pd.DataFrame | None, mass: str, n_boot: int, seed: int) -> list[Claim]:
    """Paper Figures 10-11: a frame draws the model's attention; cropping it restores the anatomy.

    One pair of claims per model set of :data:`FRAME_EXPERIMENTS`, on its rows of ``frame_crop`` (the output
    of :func:`~densenet_interp.evaluate.localisation.frame_crop_table`, one or several model sets concatenated). Cropping enlarges the anatomy's share
    of the image, so the second claim compares the anatomy share's excess over its area share.
    """
    claims = []
    for model_set, (first, second, images, fig_frame, fig_crop) in FRAME_EXPERIMENTS.items():
        names = (
            f"{first} frame draws attention ({model_set})",
            f"{second} cropping restores anatomy ({model_set})",
        )
        statements = (
            f"An image frame draws the model's attention away from the anatomy ({fig_frame}).",
            f"Cropping the frame restores attention to the anatomy ({fig_crop}).",
        )
        tests = (
            f"{images} as they are: frame share of the CAM's {mass} mass minus the frame's area share, {model_set}",
            f"the same images auto-cropped (frames.crop_frame) vs as they are: anatomy share ({mass} mass) minus "
            "the anatomy's area share (which grows with the crop), cropped minus as is",
        )
        rows = (
            None
            if frame_crop is None or frame_crop.empty
            else frame_crop[frame_crop["model_set"] == model_set]
        )
        if rows is None or rows.empty:
            claims += [
                Claim(n, s, t, {"n_images": 0}, None, _verdict(None, "", 0, 0))
                for n, s, t in zip(names, statements, tests, strict=True)
            ]
            continue
        as_is = rows[rows["condition"] == "as_is"]
        excess = rows[share_column("anatomy", mass)] - rows["anatomy_chance"]
        paired = rows.assign(model_set=rows["condition"], anatomy_excess=excess)
        result = paired_difference(paired, "anatomy_excess", "cropped", "as_is", None, n_boot, seed)
        result["n_frame_found"] = int(as_is["cropped"].sum())
        claims += [
            _excess_claim(names[0], statements[0], tests[0], as_is, "frame", mass, n_boot, seed),
            _diff_claim(names[1], statements[1], tests[1], +1, result, ("cropped", "as is")),
        ]
    return claims


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


def claims_report(
    per_image: pd.DataFrame,
    frame_crop: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    mass: str = "relative",
) -> list[Claim]:
    """The paper's qualitative claims, each with a verdict computed from the localisation numbers (one reading)."""
    share_column("lesion", mass)  # validates ``mass``
    require_columns(
        per_image, ("model_set", "path", "patient", "kind", "body_part", "label", "correct"), "per-image"
    )
    return [
        *legend_claims(per_image, mass, n_boot, seed),
        *pretraining_claims(per_image, mass, n_boot, seed),
        *frame_claims(frame_crop, mass, n_boot, seed),
        accuracy_claim(per_image, mass),
    ]


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
