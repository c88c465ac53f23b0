"""Training-seed noise: Table 1 over seeds, and every comparison and claim decided across seeds and patients.

A single training run answers "what did this model learn"; whether a *recipe* makes a model better or look
elsewhere needs the run repeated with other training seeds (``make seeds SEEDS=5``: seed 0 is the main run,
seeds 1..N-1 train every model set again on the same data from the same pre-training). Two kinds of noise then
sit in every number: which validation patients happened to be drawn (the patient bootstrap of
:mod:`densenet_interp.evaluate.stats`) and which training run happened to be made (the seed).

* :func:`table1_seeds`: per model set and metric (accuracy, kappa, AUROC; image level as the paper's Table 1)
  the paper's value, the main run with its patient-bootstrap interval, and the mean, standard deviation and
  range over seeds, with the pooled interval.
* :func:`comparisons_seeds`: the Table 1 comparisons (pre-trained vs random on the wrist, all extremities vs
  wrist-only, finger-only vs wrist-only), each model set on its own validation images as in Table 1.
* :func:`claims_seeds`: the paper's qualitative claims (:mod:`densenet_interp.evaluate.claims`), each on the
  same images as the claims table, once per seed and pooled.

Pooled intervals come from a crossed two-level bootstrap: each resample draws the patients once for every seed
(:func:`~densenet_interp.evaluate.stats.resampled_means`), then draws the seeds with replacement and averages
them (:func:`~densenet_interp.evaluate.stats.pool_seeds`). A comparison or claim is *supported* only when
that interval lies on the paper's side of no effect, *contradicted* when on the other side, *inconclusive*
otherwise; the per-seed verdicts (each seed's own patient interval) are reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..profiles import MODEL_SETS
from .claims import (
    Claim,
    ClaimSample,
    accuracy_claim,
    accuracy_sample,
    claim_from_sample,
    claim_samples,
    decide,
)
from .measures import MASSES
from .metrics import METRICS, PAPER_TABLE1
from .stats import (
    MIN_PATIENTS,
    format_interval,
    group_counts,
    percentile_interval,
    pool_seeds,
    resampled_means,
    shared_codes,
)

TABLE1_METRICS = ("accuracy", "kappa", "auroc")
"""The metrics reported per seed: the paper's two (image-level accuracy, Cohen's kappa) and AUROC."""

VERDICTS = {True: "supported", False: "contradicted", None: "inconclusive"}


@dataclass(frozen=True)
class Comparison:
    """Two rows of Table 1 compared: ``a`` minus ``b``, each on its own validation images."""

    name: str
    a: str
    b: str


COMPARISONS = (
    Comparison("wrist: pre-trained vs random initialised", "wrist_pretrained", "wrist_random"),
    Comparison("all extremity types vs wrist-only", "all_pretrained", "wrist_pretrained"),
    Comparison("finger-only vs wrist-only", "finger_pretrained", "wrist_pretrained"),
)
"""The comparisons the paper draws from its Table 1 (section 4)."""


def _seeds(runs: Mapping[int, object]) -> list[int]:
    seeds = sorted(runs)
    if not seeds:
        raise ValueError("expected the results of at least one training seed, got none")
    return seeds


def _resampled_metric(
    frames: Sequence[pd.DataFrame],
    names: Sequence[str],
    n_boot: int,
    seed: int,
    patients: Sequence | None = None,
) -> dict[str, np.ndarray]:
    """Per metric, ``(n_boot, runs)``: each run's metric on the same patient resamples (rows).

    ``frames`` are predictions tables (``label``, ``probability``, ``patient``). ``patients`` (optional) fixes
    the patients the draws are made over (their union with the frames' patients, in that order first).
    """
    groups = [f["patient"].to_numpy(dtype=object) for f in frames]
    codes, n_groups = shared_codes(
        ([np.asarray(patients, dtype=object)] if patients is not None else []) + groups
    )
    codes = codes[1:] if patients is not None else codes
    counts = group_counts(n_groups, n_boot, seed)
    out = {name: np.full((n_boot, len(frames)), np.nan) for name in names}
    for run, (frame, run_codes) in enumerate(zip(frames, codes, strict=True)):
        y = frame["label"].to_numpy(dtype=np.int64)
        p = frame["probability"].to_numpy(dtype=np.float64)
        row_counts = counts[:, run_codes]
        for b in range(n_boot):
            rows = np.repeat(np.arange(len(y)), row_counts[b])
            if rows.size == 0:
                continue
            for name in names:
                out[name][b, run] = METRICS[name](y[rows], p[rows])
    return out


def _spread(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"seeds_mean": math.nan, "seeds_sd": math.nan, "seeds_min": math.nan, "seeds_max": math.nan}
    return {
        "seeds_mean": float(finite.mean()),
        "seeds_sd": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
        "seeds_min": float(finite.min()),
        "seeds_max": float(finite.max()),
    }


# ----------------------------------------------------------------------------------------------------------
# Table 1


def table1_seeds(
    predictions: Mapping[int, Mapping[str, pd.DataFrame]], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per model set (Table 1 order) and metric: the paper, the main run (seed 0) and the spread over seeds.

    ``predictions[k][model_set]``: seed ``k``'s predictions table. Columns: ``model_set``, ``title``,
    ``metric``, ``paper``, ``main_run``, ``main_low``, ``main_high`` (the main run's 95 % patient-bootstrap
    interval, as in ``table1_extended``), ``seeds``, ``seeds_mean``, ``seeds_sd`` (ddof 1), ``seeds_min``,
    ``seeds_max``, ``per_seed`` (the values, seed order), ``pooled_low``, ``pooled_high`` (the crossed
    seeds x patients interval of the mean over seeds), ``n_images``, ``n_patients``.
    """
    seeds = _seeds(predictions)
    if 0 not in predictions:
        raise ValueError("seed 0 (the main run) is missing; table1_seeds reports it beside the seeds")
    rows = []
    for name in (n for n in MODEL_SETS if all(n in predictions[k] for k in seeds)):
        frames = [predictions[k][name] for k in seeds]
        boot = _resampled_metric(frames, TABLE1_METRICS, n_boot, seed)
        for metric in TABLE1_METRICS:
            values = np.array(
                [METRICS[metric](f["label"].to_numpy(), f["probability"].to_numpy()) for f in frames]
            )
            main_low, main_high = percentile_interval(boot[metric][:, seeds.index(0)])
            pooled_low, pooled_high = percentile_interval(pool_seeds(boot[metric], seed))
            paper = PAPER_TABLE1[name]
            rows.append(
                {
                    "model_set": name,
                    "title": paper.label,
                    "metric": metric,
                    "paper": {"accuracy": paper.accuracy, "kappa": paper.kappa}.get(metric, math.nan),
                    "main_run": float(values[seeds.index(0)]),
                    "main_low": main_low,
                    "main_high": main_high,
                    "seeds": len(seeds),
                    **_spread(values),
                    "per_seed": " ".join(f"{v:.3f}" for v in values),
                    "pooled_low": pooled_low,
                    "pooled_high": pooled_high,
                    "n_images": len(frames[0]),
                    "n_patients": int(frames[0]["patient"].nunique()),
                }
            )
    return pd.DataFrame(rows)


def comparisons_seeds(
    predictions: Mapping[int, Mapping[str, pd.DataFrame]], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """The Table 1 comparisons (:data:`COMPARISONS`) per metric: per seed, and pooled over seeds and patients.

    The difference ``a - b`` of a metric, each model set on its own validation images (as Table 1 sets them
    side by side); one draw of patients resamples both (a patient with images in both counts in both). The
    claimed side is the sign of the paper's accuracy difference. Columns: ``comparison``, ``a``, ``b``,
    ``metric``, ``paper_difference``, ``claimed_sign``, ``seeds``, ``per_seed`` (difference and verdict per
    seed), ``seeds_supported``, ``seeds_contradicted``, ``difference`` (mean over seeds), ``pooled_low``,
    ``pooled_high``, ``n_patients``, ``supported`` (True, False or None) and ``verdict``.
    """
    seeds = _seeds(predictions)
    rows = []
    for comparison in COMPARISONS:
        if not all(comparison.a in predictions[k] and comparison.b in predictions[k] for k in seeds):
            continue
        frames_a = [predictions[k][comparison.a] for k in seeds]
        frames_b = [predictions[k][comparison.b] for k in seeds]
        union = pd.unique(np.concatenate([frames_a[0]["patient"].to_numpy(object),
                                          frames_b[0]["patient"].to_numpy(object)]))  # fmt: skip
        boot_a = _resampled_metric(frames_a, TABLE1_METRICS, n_boot, seed, patients=union)
        boot_b = _resampled_metric(frames_b, TABLE1_METRICS, n_boot, seed, patients=union)
        paper_a, paper_b = PAPER_TABLE1[comparison.a], PAPER_TABLE1[comparison.b]
        sign = 1 if paper_a.accuracy > paper_b.accuracy else -1
        for metric in TABLE1_METRICS:
            diffs = np.array(
                [
                    METRICS[metric](fa["label"].to_numpy(), fa["probability"].to_numpy())
                    - METRICS[metric](fb["label"].to_numpy(), fb["probability"].to_numpy())
                    for fa, fb in zip(frames_a, frames_b, strict=True)
                ]
            )
            boot = boot_a[metric] - boot_b[metric]
            per_seed = [decide(*percentile_interval(boot[:, i]), sign, len(union)) for i in range(len(seeds))]
            low, high = percentile_interval(pool_seeds(boot, seed))
            supported = decide(low, high, sign, len(union))
            paper = {"accuracy": paper_a.accuracy - paper_b.accuracy, "kappa": paper_a.kappa - paper_b.kappa}
            difference = float(np.nanmean(diffs)) if np.isfinite(diffs).any() else math.nan
            rows.append(
                {
                    "comparison": comparison.name,
                    "a": comparison.a,
                    "b": comparison.b,
                    "metric": metric,
                    "paper_difference": paper.get(metric, math.nan),
                    "claimed_sign": sign,
                    "seeds": len(seeds),
                    "per_seed": _per_seed_text(seeds, diffs, per_seed),
                    "seeds_supported": sum(v is True for v in per_seed),
                    "seeds_contradicted": sum(v is False for v in per_seed),
                    "difference": difference,
                    "pooled_low": low,
                    "pooled_high": high,
                    "n_patients": len(union),
                    "supported": supported,
                    "verdict": _pooled_verdict(
                        supported, difference, low, high, len(seeds), per_seed, "difference", len(union)
                    ),  # fmt: skip
                }
            )
    return pd.DataFrame(rows)


def _per_seed_text(seeds: Sequence[int], values: np.ndarray, verdicts: Sequence[bool | None]) -> str:
    return "; ".join(
        f"seed {k}: {format_interval(v, signed=True)} {VERDICTS[d]}"
        for k, v, d in zip(seeds, values, verdicts, strict=True)
    )


def _pooled_verdict(
    supported: bool | None,
    effect: float,
    low: float,
    high: float,
    n_seeds: int,
    per_seed: Sequence[bool | None],
    what: str,
    n_patients: int,
) -> str:
    if not np.isfinite(effect):
        return "not testable: no seed has images for this test"
    if n_patients < MIN_PATIENTS:
        return f"not testable: fewer than {MIN_PATIENTS} patients"
    head = VERDICTS[supported]
    alone = sum(v is True for v in per_seed)
    against = sum(v is False for v in per_seed)
    return (
        f"{head}: mean {what} over {n_seeds} seed(s) {format_interval(effect, low, high, signed=True)} "
        f"(95 % interval over seeds and patients); alone, {alone} of {n_seeds} seed(s) support it"
        + (f" and {against} contradict it" if against else "")
    )


# ----------------------------------------------------------------------------------------------------------
# the paper's claims


def _pooled_claim(samples: Sequence[ClaimSample], per_seed: Sequence[Claim], n_boot: int, seed: int) -> dict:
    """One claim over seeds: per-seed verdicts, and the crossed interval of the mean effect over seeds."""
    first = samples[0]
    boot = resampled_means(
        [(s.differences.to_numpy(float), s.values["patient"].to_numpy(object)) for s in samples], n_boot, seed
    )
    effects = np.array([s.differences.mean() if len(s.values) else math.nan for s in samples], dtype=float)
    n_patients = min(int(s.values["patient"].nunique()) for s in samples)
    low, high = percentile_interval(pool_seeds(boot, seed))
    supported = decide(low, high, first.sign, n_patients)
    effect = float(np.nanmean(effects)) if np.isfinite(effects).any() else math.nan
    verdicts = [c.supported for c in per_seed]
    return {
        "claim": first.name,
        "statement": first.statement,
        "test": first.test,
        "claimed_sign": first.sign,
        "seeds": len(samples),
        "per_seed": "; ".join(c.verdict.partition(":")[0] for c in per_seed),
        "seeds_supported": sum(v is True for v in verdicts),
        "seeds_contradicted": sum(v is False for v in verdicts),
        "effect": effect,
        "pooled_low": low,
        "pooled_high": high,
        "n_patients": n_patients,
        "supported": supported if np.isfinite(effect) and n_patients >= MIN_PATIENTS else None,
        "verdict": _pooled_verdict(
            supported, effect, low, high, len(samples), verdicts, first.effect, n_patients
        ),
    }


def claims_seeds(
    per_image: Mapping[int, pd.DataFrame],
    frame_crop: Mapping[int, pd.DataFrame | None],
    n_boot: int = 1000,
    seed: int = 0,
    masses: Sequence[str] = MASSES,
) -> pd.DataFrame:
    """Every claim of the claims table, per seed and pooled over seeds and patients, under each mass reading.

    ``per_image[k]`` / ``frame_crop[k]``: seed ``k``'s localisation tables (as notebook 50 writes them). Claims
    1a-3d use their :class:`~densenet_interp.evaluate.claims.ClaimSample` (the same images and numbers as the
    claims table); claim 4 (right for the wrong reasons) pools the share of correctly classified abnormal
    images that look elsewhere, supported when its interval excludes 0. A seed's own verdict is the one the
    claims table would print for it.
    """
    seeds = _seeds(per_image)
    rows = []
    for mass in masses:
        by_seed = [claim_samples(per_image[k], frame_crop.get(k), mass) for k in seeds]
        for index in range(len(by_seed[0])):
            samples = [found[index] for found in by_seed]
            per_seed = [claim_from_sample(s, n_boot, seed) for s in samples]
            rows.append({"mass": mass, **_pooled_claim(samples, per_seed, n_boot, seed)})
        samples = [accuracy_sample(per_image[k], mass) for k in seeds]
        per_seed = [accuracy_claim(per_image[k], mass) for k in seeds]
        rows.append({"mass": mass, **_pooled_claim(samples, per_seed, n_boot, seed)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# Markdown


def table1_seeds_markdown(table: pd.DataFrame, comparisons: pd.DataFrame, data_label: str) -> str:
    """Table 1 over seeds and the Table 1 comparisons pooled over seeds, as Markdown."""
    n_seeds = int(table["seeds"].iloc[0]) if len(table) else 0
    lines = [
        f"# Table 1 over {n_seeds} training seeds",
        "",
        "Image-level metrics on each model set's validation images. *Main run*: seed 0 (the run `make reproduce` "
        "trains) with its 95 % patient-bootstrap interval; *seeds*: mean ± standard deviation [range] over "
        f"{n_seeds} training seeds (same data and pre-training, other initial weights of the new layers, data "
        "order and augmentation); *pooled*: 95 % interval of the mean over seeds, resampling seeds and patients.",
        "",
        "| model set | metric | paper | main run | seeds: mean ± sd [min, max] | pooled 95 % |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in table.itertuples():
        paper = "n/a" if not np.isfinite(r.paper) else f"{r.paper:.3f}"
        sd = "n/a" if not np.isfinite(r.seeds_sd) else f"{r.seeds_sd:.3f}"
        lines.append(
            f"| {r.title} | {r.metric} | {paper} | {format_interval(r.main_run, r.main_low, r.main_high)} | "
            f"{r.seeds_mean:.3f} ± {sd} [{r.seeds_min:.3f}, {r.seeds_max:.3f}] | "
            f"[{r.pooled_low:.3f}, {r.pooled_high:.3f}] |"
        )
    lines += [
        "",
        "## The paper's Table 1 comparisons, over seeds",
        "",
        "Difference *a − b*, each model set on its own validation images; the claimed side is the paper's (the "
        "sign of its accuracy difference). *Supported* only when the pooled interval (seeds and patients) lies "
        "on that side of 0.",
        "",
        "| comparison | metric | paper | per seed | pooled verdict |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for r in comparisons.itertuples():
        paper = "n/a" if not np.isfinite(r.paper_difference) else f"{r.paper_difference:+.3f}"
        head, _, rest = r.verdict.partition(":")
        lines.append(f"| {r.comparison} | {r.metric} | {paper} | {r.per_seed} | **{head}**:{rest} |")
    lines += ["", f"Data: {data_label}.", ""]
    return "\n".join(lines)


def claims_seeds_markdown(claims: pd.DataFrame, extra: Sequence[str], data_label: str) -> str:
    """The claims pooled over seeds as Markdown, one table per mass reading; ``extra``: further lines."""
    n_seeds = int(claims["seeds"].iloc[0]) if len(claims) else 0
    lines = [
        f"# The paper's qualitative claims over {n_seeds} training seeds",
        "",
        "Each claim is tested on every seed's localisation numbers (the same images as the claims table). *Per "
        "seed*: the verdict of that run alone (its 95 % patient-bootstrap interval). *Pooled*: the mean effect "
        "over seeds with a 95 % interval that resamples seeds and patients; a claim is *supported* only when it "
        "lies on the claimed side of no effect.",
    ]
    for mass, rows in claims.groupby("mass", sort=False):
        lines += [
            "",
            f"## CAM mass: {mass}",
            "",
            "| claim | paper | per seed | pooled verdict |",
            "| --- | --- | --- | --- |",
        ]
        for r in rows.itertuples():
            head, _, rest = r.verdict.partition(":")
            cells = [r.claim, r.statement, r.per_seed, f"**{head}**:{rest}"]
            lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    lines += ["", *extra, "", f"Data: {data_label}.", ""]
    return "\n".join(lines)
