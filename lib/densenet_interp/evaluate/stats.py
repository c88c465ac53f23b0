"""The statistics every table shares: the patient bootstrap, its percentile intervals and how they are read.

A patient's images (and studies) are correlated, so resampling images one by one would make intervals too
narrow. Every interval in the project therefore resamples *groups* (patients): a resample draws as many
groups as there are, with replacement, and takes all rows of each drawn group as often as it was drawn
(:func:`group_counts`, the one place the draws are made). Two bootstraps use it:

* :func:`bootstrap_distribution` / :func:`bootstrap_ci`: any metric of ``(y_true, prob)`` on a predictions
  table (Table 1 and its extended version, :mod:`densenet_interp.evaluate.metrics`);
* :func:`bootstrap_mean` / :func:`paired_difference`: the mean of per-image values, or the mean difference
  of two model sets on the same images (localisation, faithfulness, the claims, the shortcut experiment).

Training seeds add a second source of noise (``make seeds``): :func:`resampled_means` evaluates every seed on
the same patient resamples, and :func:`pool_seeds` resamples the seeds too (a crossed two-level bootstrap), so
that an interval pooled over seeds holds both the seed-to-seed and the patient variation.

Intervals are percentile intervals at :data:`LEVEL` (:func:`percentile_interval`), deterministic for a given
seed. :func:`direction` reads an interval against "no effect", :data:`MIN_PATIENTS` is the fewest patients
an interval may decide anything on, and :func:`format_interval` writes ``0.412 [0.301, 0.520]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

LEVEL = 0.95
"""Coverage of every interval: 95 % percentile-bootstrap intervals."""
MIN_PATIENTS = 5
"""Below this a patient bootstrap has too few distinct resamples to decide a claim."""

Metric = Callable[[np.ndarray, np.ndarray], float]


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """ValueError naming the missing columns unless ``frame`` has all of ``columns`` (``what``: its name)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


# ----------------------------------------------------------------------------------------------------------
# resampling groups


def group_counts(n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_groups)`` int array: how often each group is drawn in each of ``n_boot`` resamples.

    Each resample draws ``n_groups`` groups uniformly with replacement, all at once from
    ``numpy.random.default_rng(seed)``, so the draws depend only on ``(n_groups, n_boot, seed)``.
    """
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(n_boot, n_groups))
    offsets = (np.arange(n_boot) * n_groups)[:, np.newaxis]
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n_groups).reshape(n_boot, n_groups)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """``(low, high)``: the central ``level`` percentile interval of the finite ``values``; nans if none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))


def _check(n_boot: int, level: float = LEVEL) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")


# ----------------------------------------------------------------------------------------------------------
# metrics of a predictions table


def bootstrap_distribution(
    pred_df: pd.DataFrame,
    metrics: Mapping[str, Metric],
    n_boot: int = 1000,
    seed: int = 0,
    group: str | None = "patient",
) -> pd.DataFrame:
    """Each metric on ``n_boot`` resamples of ``pred_df`` (rows: resamples; columns: metric names).

    A resample draws as many groups (patients) as there are, with replacement, and takes all rows of each
    drawn group as often as it was drawn. ``group=None`` resamples single rows. ``label`` and
    ``probability`` are passed to each metric as ``(y_true, prob)``.
    """
    _check(n_boot)
    y = pred_df["label"].to_numpy(dtype=np.int64)
    p = pred_df["probability"].to_numpy(dtype=np.float64)
    if group is None:
        codes = np.arange(len(pred_df))
    else:
        if pred_df[group].isna().any():
            raise ValueError(f"column {group!r} has missing values; every row must belong to a {group}")
        codes = pd.factorize(pred_df[group])[0]
    row_counts = group_counts(int(codes.max()) + 1, n_boot, seed)[:, codes]  # each row's count per resample
    values = np.empty((n_boot, len(metrics)))
    for b in range(n_boot):
        rows = np.repeat(np.arange(len(y)), row_counts[b])
        yb, pb = y[rows], p[rows]
        values[b] = [metric(yb, pb) for metric in metrics.values()]
    return pd.DataFrame(values, columns=list(metrics))


def bootstrap_ci(
    pred_df: pd.DataFrame,
    metric: Metric,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
    group: str | None = "patient",
) -> tuple[float, float]:
    """Percentile bootstrap interval ``(low, high)`` of ``metric(y_true, prob)``, resampling ``group``s.

    Resamples where the metric is undefined (nan, e.g. one class only) are left out; (nan, nan) if all are.
    Deterministic for a given ``seed``.
    """
    _check(n_boot, level)
    values = bootstrap_distribution(pred_df, {"metric": metric}, n_boot, seed, group)["metric"].to_numpy()
    return percentile_interval(values, level)


# ----------------------------------------------------------------------------------------------------------
# means of per-image values


def bootstrap_mean(
    values, groups, n_boot: int = 1000, seed: int = 0, level: float = LEVEL
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its percentile-bootstrap interval resampling groups.

    Each resample draws as many groups (patients) as there are, with replacement, and averages all values of
    the drawn groups (a group drawn twice counts twice). Non-finite values are left out first. Deterministic
    for a given ``seed``; ``(nan, nan, nan)`` without values.
    """
    _check(n_boot, level)
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups)
    if values.shape != groups.shape or values.ndim != 1:
        raise ValueError(f"values {values.shape} and groups {groups.shape} must be 1-D of equal length")
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    if values.size == 0:
        return math.nan, math.nan, math.nan
    codes, _ = pd.factorize(groups)
    n_groups = int(codes.max()) + 1
    sums = np.bincount(codes, weights=values, minlength=n_groups)
    sizes = np.bincount(codes, minlength=n_groups).astype(np.float64)
    counts = group_counts(n_groups, n_boot, seed)
    means = (counts @ sums) / (counts @ sizes)  # every resample holds n_groups groups: all finite
    low, high = percentile_interval(means, level)
    return float(values.mean()), low, high


def paired_values(
    per_image: pd.DataFrame, column: str, model_a: str, model_b: str, paths: Iterable[str] | None = None
) -> pd.DataFrame:
    """``column`` of ``model_a`` (``a``) and ``model_b`` (``b``) on each image both saw, matched by ``path``.

    Optionally restricted to ``paths``; only images where both values are finite. Columns ``path``,
    ``patient``, ``a``, ``b``, in ``model_a``'s row order.
    """
    require_columns(per_image, ("model_set", "path", "patient", column), "per-image table")
    a = per_image[per_image["model_set"] == model_a].set_index("path")
    b = per_image[per_image["model_set"] == model_b].set_index("path")
    common = a.index.intersection(b.index, sort=False)
    if paths is not None:
        common = common.intersection(pd.Index(list(paths)), sort=False)
    va, vb = a.loc[common, column].to_numpy(float), b.loc[common, column].to_numpy(float)
    both = np.isfinite(va) & np.isfinite(vb)
    return pd.DataFrame(
        {
            "path": common[both],
            "patient": a.loc[common, "patient"].to_numpy()[both],
            "a": va[both],
            "b": vb[both],
        }
    )


def paired_difference(
    per_image: pd.DataFrame,
    column: str,
    model_a: str,
    model_b: str,
    paths: Iterable[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of ``column`` for ``model_a`` minus ``model_b`` on the images both saw, with a patient bootstrap.

    Pairs are matched by ``path`` (:func:`paired_values`), optionally restricted to ``paths``.
    Returns ``a``, ``b``, ``diff``, ``diff_low``, ``diff_high``, ``n_images`` and ``n_patients``.
    """
    pairs = paired_values(per_image, column, model_a, model_b, paths)
    diff, low, high = bootstrap_mean((pairs["a"] - pairs["b"]).to_numpy(float), pairs["patient"].to_numpy(),
                                     n_boot, seed)  # fmt: skip
    return {
        "a": float(pairs["a"].mean()) if len(pairs) else math.nan,
        "b": float(pairs["b"].mean()) if len(pairs) else math.nan,
        "diff": diff,
        "diff_low": low,
        "diff_high": high,
        "n_images": len(pairs),
        "n_patients": int(pairs["patient"].nunique()),
    }


# ----------------------------------------------------------------------------------------------------------
# training seeds crossed with patients


def shared_codes(patients_by_run: Sequence) -> tuple[list[np.ndarray], int]:
    """Each run's patients as codes into the union of all runs' patients (in order of first appearance).

    Training seeds evaluate the same validation patients; coding them jointly lets one draw of patients
    (:func:`group_counts` over the union) resample every run alike.
    """
    arrays = [np.asarray(p, dtype=object) for p in patients_by_run]
    if not arrays:
        return [], 0
    codes, uniques = pd.factorize(np.concatenate(arrays))
    bounds = np.cumsum([len(a) for a in arrays])[:-1]
    return list(np.split(codes, bounds)), len(uniques)


def resampled_means(
    samples: Sequence[tuple[np.ndarray, np.ndarray]], n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """``(n_boot, runs)``: each run's mean of its values on the same ``n_boot`` patient resamples.

    ``samples`` holds one ``(values, patients)`` pair per run (training seed); non-finite values are left out.
    Row ``b`` uses one draw of the union's patients for every run (a patient drawn twice counts twice in each
    run), so a column is that run's patient bootstrap and a row compares runs on the same patients. A run with
    no value in a resample gives nan there.
    """
    _check(n_boot)
    cleaned = []
    for values, patients in samples:
        values, patients = np.asarray(values, dtype=np.float64), np.asarray(patients, dtype=object)
        if values.shape != patients.shape or values.ndim != 1:
            raise ValueError(
                f"values {values.shape} and patients {patients.shape} must be 1-D of equal length"
            )
        keep = np.isfinite(values)
        cleaned.append((values[keep], patients[keep]))
    codes, n_groups = shared_codes([p for _, p in cleaned])
    out = np.full((n_boot, len(cleaned)), np.nan)
    if n_groups == 0:
        return out
    counts = group_counts(n_groups, n_boot, seed).astype(np.float64)
    for run, ((values, _), run_codes) in enumerate(zip(cleaned, codes, strict=True)):
        sums = np.bincount(run_codes, weights=values, minlength=n_groups)
        sizes = np.bincount(run_codes, minlength=n_groups).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, run] = (counts @ sums) / (counts @ sizes)
    return out


def pool_seeds(per_seed: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(n_boot,)``: the crossed (seeds x patients) bootstrap of the mean over training seeds.

    ``per_seed[b, s]`` is seed ``s``'s statistic on patient resample ``b`` (:func:`resampled_means`, or a
    metric on the same draws). Each row also resamples the seeds, with replacement (its own generator,
    ``seed + 1``), and averages the drawn seeds' statistics: the spread of the result holds both the
    patient-sampling and the seed-to-seed variation, so its percentile interval (:func:`percentile_interval`)
    is the interval a claim pooled over seeds is decided on. With one seed it is that seed's patient bootstrap.
    Non-finite statistics are left out of a row's average (nan if nothing is left).
    """
    per_seed = np.asarray(per_seed, dtype=np.float64)
    if per_seed.ndim != 2 or per_seed.shape[1] == 0:
        raise ValueError(
            f"expected a (resamples, seeds) array with at least one seed, got shape {per_seed.shape}"
        )
    n_boot, n_seeds = per_seed.shape
    draws = group_counts(n_seeds, n_boot, seed + 1).astype(np.float64)
    finite = np.isfinite(per_seed)
    weights = draws * finite
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights * np.where(finite, per_seed, 0.0)).sum(axis=1) / total


# ----------------------------------------------------------------------------------------------------------
# reading and writing intervals


def direction(low: float, high: float, sign: int) -> bool | None:
    """True if the interval ``[low, high]`` is entirely on the ``sign`` side of 0, False if entirely opposite."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    if sign * low > 0 and sign * high > 0:
        return True
    if sign * low < 0 and sign * high < 0:
        return False
    return None


def format_interval(value: float, low: float = math.nan, high: float = math.nan, signed: bool = False) -> str:
    """``0.412 [0.301, 0.520]`` (3 decimals; ``+`` signs with ``signed``); ``n/a`` for a missing value."""
    spec = "+.3f" if signed else ".3f"
    if value is None or not np.isfinite(value):
        return "n/a"
    value, low, high = (round(float(v), 3) + 0.0 for v in (value, low, high))  # + 0.0: no "-0.000"
    text = f"{value:{spec}}"
    if np.isfinite(low) and np.isfinite(high):
        text += f" [{low:{spec}}, {high:{spec}}]"
    return text
