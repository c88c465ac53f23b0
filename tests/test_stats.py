"""The patient bootstrap and the reading of its intervals (densenet_interp.evaluate.stats), against reference
implementations written the slow, obvious way: each resample built row by row from the same draws.

`make mutants` found the rules these state unguarded (an interval's tails, the draw of a second seed level,
the sign of a direction, the rounding of a printed interval)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from densenet_interp.evaluate import stats


def _draws(n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """The group drawn at each position of each resample, as the module documents it."""
    return np.random.default_rng(seed).integers(0, n_groups, size=(n_boot, n_groups))


def test_group_counts_count_each_resamples_draws_of_every_group():
    counts = stats.group_counts(7, 50, seed=4)
    draws = _draws(7, 50, 4)
    expected = np.stack([np.bincount(row, minlength=7) for row in draws])
    np.testing.assert_array_equal(counts, expected)
    assert (counts.sum(axis=1) == 7).all()  # a resample holds as many groups as there are
    assert not np.array_equal(counts, stats.group_counts(7, 50, seed=5))


@pytest.mark.parametrize("level", [0.95, 0.5, 0.8])
def test_percentile_interval_takes_the_central_level_of_the_finite_values(level):
    values = np.array([5.0, np.nan, 1.0, 3.0, np.inf, 2.0, 4.0, 10.0, -np.inf, 7.0])
    finite = values[np.isfinite(values)]
    tail = (1 - level) / 2
    expected = (np.quantile(finite, tail), np.quantile(finite, 1 - tail))
    assert stats.percentile_interval(values, level) == pytest.approx(expected)
    assert all(math.isnan(b) for b in stats.percentile_interval(np.array([np.nan, np.inf])))


def test_the_level_and_resample_count_limits():
    frame = pd.DataFrame(
        {"label": [0, 1, 1, 0], "probability": [0.2, 0.7, 0.9, 0.6], "patient": list("aabb")}
    )
    assert stats.bootstrap_ci(
        frame, lambda y, p: float(p.mean()), n_boot=1, level=0.5
    )  # one resample is allowed
    for level in (0.0, 1.0, -0.5, 95):
        with pytest.raises(ValueError, match="level"):
            stats.bootstrap_ci(frame, lambda y, p: 0.0, level=level)
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_mean([1.0], ["a"], n_boot=0)
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        stats.bootstrap_mean([1.0, 2.0], ["a", "b"], level=95)


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    patients = np.repeat([f"p{i}" for i in range(6)], [1, 3, 2, 4, 1, 2])
    return pd.DataFrame(
        {
            "label": rng.integers(0, 2, len(patients)),
            "probability": rng.random(len(patients)),
            "patient": patients,
        }
    )


def _mean_prob(y, p) -> float:
    return float(np.mean(p))


def _positives(y, p) -> float:
    return float(np.sum(y))


@pytest.mark.parametrize("group", ["patient", None])
def test_bootstrap_distribution_is_each_metric_on_whole_drawn_groups(group):
    frame = _frame()
    out = stats.bootstrap_distribution(
        frame, {"mean": _mean_prob, "pos": _positives}, n_boot=40, seed=9, group=group
    )
    assert list(out.columns) == ["mean", "pos"] and len(out) == 40
    codes = pd.factorize(frame["patient"])[0] if group else np.arange(len(frame))
    for b, drawn in enumerate(_draws(codes.max() + 1, 40, 9)):
        rows = np.concatenate([np.flatnonzero(codes == g) for g in drawn])
        sample = frame.iloc[rows]
        assert out["mean"][b] == pytest.approx(sample["probability"].mean())
        assert out["pos"][b] == sample["label"].sum()


def test_bootstrap_ci_is_the_percentile_interval_of_the_distribution():
    frame = _frame()
    values = stats.bootstrap_distribution(frame, {"m": _mean_prob}, n_boot=300, seed=2)["m"].to_numpy()
    assert stats.bootstrap_ci(frame, _mean_prob, n_boot=300, seed=2, level=0.8) == pytest.approx(
        stats.percentile_interval(values, 0.8)
    )
    # a metric undefined on some resamples: those are left out, not counted as anything
    flaky = stats.bootstrap_ci(
        frame, lambda y, p: float(p.mean()) if len(p) > 12 else math.nan, n_boot=300, seed=2
    )
    kept = [v for v, n in zip(values, _sizes(frame, 300, 2), strict=True) if n > 12]
    assert flaky == pytest.approx(stats.percentile_interval(np.asarray(kept)))


def _sizes(frame: pd.DataFrame, n_boot: int, seed: int) -> list[int]:
    sizes = frame.groupby("patient", sort=False).size().to_numpy()
    return [int(sizes[drawn].sum()) for drawn in _draws(len(sizes), n_boot, seed)]


def test_bootstrap_mean_averages_all_values_of_the_drawn_groups():
    values = np.array([1.0, 2.0, np.nan, 4.0, 8.0, 16.0, 3.0])
    groups = np.array(["a", "a", "a", "b", "c", "c", "d"])
    mean, low, high = stats.bootstrap_mean(values, groups, n_boot=400, seed=1, level=0.9)
    finite, kept = values[:2].tolist() + values[3:].tolist(), ["a", "a", "b", "c", "c", "d"]
    assert mean == pytest.approx(np.mean(finite))
    codes = pd.factorize(np.asarray(kept))[0]
    means = []
    for drawn in _draws(4, 400, 1):
        sample = np.concatenate([np.asarray(finite)[codes == g] for g in drawn])
        means.append(sample.mean())
    assert (low, high) == pytest.approx(stats.percentile_interval(np.asarray(means), 0.9))
    assert low < mean < high
    assert all(math.isnan(v) for v in stats.bootstrap_mean([np.nan], ["a"]))
    with pytest.raises(ValueError, match="1-D"):
        stats.bootstrap_mean([1.0, 2.0], ["a"])


def test_resampled_means_resample_every_run_on_one_draw_of_the_union_of_patients():
    run_a = (np.array([1.0, 3.0, 5.0, np.nan]), np.array(["x", "x", "y", "z"]))
    run_b = (np.array([10.0, 20.0]), np.array(["z", "y"]))  # patient x has no value in run b
    out = stats.resampled_means([run_a, run_b], n_boot=60, seed=6)
    assert out.shape == (60, 2)
    union = ["x", "y", "z"]  # codes in order of first appearance over the runs
    for b, drawn in enumerate(_draws(3, 60, 6)):
        for run, (values, patients) in enumerate([run_a, run_b]):
            keep = np.isfinite(values)
            picked = np.concatenate([values[keep][patients[keep] == union[g]] for g in drawn])
            expected = picked.mean() if picked.size else math.nan
            np.testing.assert_allclose(out[b, run], expected, equal_nan=True)
    assert np.isnan(out[:, 1]).any()  # resamples of x alone: run b has no value there
    assert np.isnan(stats.resampled_means([(np.array([np.nan]), np.array(["x"]))], n_boot=3)).all()
    with pytest.raises(ValueError, match="1-D"):
        stats.resampled_means([(np.array([1.0, 2.0]), np.array(["x"]))])


def test_shared_codes_number_patients_by_first_appearance_over_all_runs():
    codes, n = stats.shared_codes([["b", "a", "b"], ["c", "a"], []])
    assert n == 3
    assert [c.tolist() for c in codes] == [[0, 1, 0], [2, 1], []]
    assert stats.shared_codes([]) == ([], 0)


def test_pool_seeds_averages_the_drawn_seeds_of_each_row():
    per_seed = np.array([[1.0, 2.0, 4.0], [np.nan, 2.0, 8.0], [np.nan, np.nan, np.nan], [3.0, 5.0, 7.0]])
    pooled = stats.pool_seeds(per_seed, seed=10)
    for b, drawn in enumerate(_draws(3, 4, 11)):  # the seeds' own generator: seed + 1
        values = [per_seed[b, s] for s in drawn if np.isfinite(per_seed[b, s])]
        np.testing.assert_allclose(pooled[b], np.mean(values) if values else math.nan, equal_nan=True)
    as_objects = stats.pool_seeds(per_seed.astype(object), seed=10)  # e.g. from a mixed pandas column
    np.testing.assert_array_equal(as_objects, pooled)
    one = np.array([[1.0], [np.nan], [2.5]])
    np.testing.assert_array_equal(stats.pool_seeds(one), one[:, 0])  # one seed: its patient bootstrap
    for bad in (np.zeros(3), np.zeros((3, 0))):
        with pytest.raises(ValueError, match="seeds"):
            stats.pool_seeds(bad)


@pytest.mark.parametrize(
    "low, high, sign, expected",
    [
        (0.1, 0.5, 1, True),
        (-0.5, -0.1, 1, False),
        (-0.5, -0.1, -1, True),
        (0.1, 0.5, -1, False),
        (0.0, 0.5, 1, None),  # touching zero decides nothing
        (-0.5, 0.0, 1, None),
        (-0.5, 0.0, -1, None),
        (0.0, 0.5, -1, None),
        (-0.1, 0.1, 1, None),
        (math.nan, 0.5, 1, None),
        (0.1, math.inf, 1, None),
    ],
)
def test_direction_reads_an_interval_against_zero(low, high, sign, expected):
    assert stats.direction(low, high, sign) is expected


@pytest.mark.parametrize(
    "args, kwargs, text",
    [
        ((0.41249, 0.30051, 0.52049), {}, "0.412 [0.301, 0.520]"),
        ((0.41249, 0.30051, 0.52049), {"signed": True}, "+0.412 [+0.301, +0.520]"),
        ((-0.0004, -0.0021, 0.0003), {"signed": True}, "+0.000 [-0.002, +0.000]"),  # no "-0.000"
        ((-0.0004,), {}, "0.000"),
        ((0.5, math.nan, 0.6), {}, "0.500"),
        ((0.5, 0.4, math.nan), {}, "0.500"),
        ((0.5,), {}, "0.500"),
        ((math.nan, 0.1, 0.2), {}, "n/a"),
        ((None,), {}, "n/a"),
        ((math.inf,), {}, "n/a"),
    ],
)
def test_format_interval_writes_three_decimals(args, kwargs, text):
    assert stats.format_interval(*args, **kwargs) == text


def test_paired_values_pair_by_path_and_keep_finite_pairs_in_the_first_models_order():
    per_image = pd.DataFrame(
        {
            "model_set": ["A", "A", "A", "A", "B", "B", "B", "B"],
            "path": ["p3", "p2", "p1", "p4", "p1", "p2", "p3", "p4"],
            "patient": ["y", "y", "x", "z", "x", "y", "y", "z"],
            "v": pd.Series([3.0, np.inf, 1.0, 2.0, 10.0, 20.0, 30.0, "40"], dtype=object),  # a mixed column
        }
    )
    pairs = stats.paired_values(per_image, "v", "A", "B")
    assert pairs.to_dict("list") == {
        "path": ["p3", "p1", "p4"],  # model A's order, not sorted
        "patient": ["y", "x", "z"],
        "a": [3.0, 1.0, 2.0],
        "b": [30.0, 10.0, 40.0],
    }
    only = stats.paired_values(per_image, "v", "A", "B", paths=["p1", "p9", "p3"])
    assert only["path"].tolist() == ["p3", "p1"]  # still model A's order
    with pytest.raises(ValueError, match=r"per-image table lacks column\(s\) \['w'\]"):
        stats.paired_values(per_image, "w", "A", "B")


def test_the_defaults_are_1000_patient_resamples_from_seed_0_at_95_percent():
    rng = np.random.default_rng(8)  # 60 patients with continuous values: 1000 and 1001 resamples differ
    frame = pd.DataFrame(
        {
            "label": rng.integers(0, 2, 150),
            "probability": rng.random(150),
            "patient": rng.integers(0, 60, 150),
        }
    )
    values, groups = frame["probability"].to_numpy(), frame["patient"].to_numpy()
    assert stats.bootstrap_ci(frame, _mean_prob) == stats.bootstrap_ci(frame, _mean_prob, 1000, 0, 0.95)
    assert stats.bootstrap_mean(values, groups) == stats.bootstrap_mean(values, groups, 1000, 0, 0.95)
    runs = [(values, groups), (values[::-1], groups)]
    np.testing.assert_array_equal(stats.resampled_means(runs), stats.resampled_means(runs, 1000, 0))
    metric = {"m": _mean_prob}
    pd.testing.assert_frame_equal(
        stats.bootstrap_distribution(frame, metric), stats.bootstrap_distribution(frame, metric, 1000, 0)
    )
    per_seed = np.random.default_rng(0).random((20, 3))
    np.testing.assert_array_equal(stats.pool_seeds(per_seed), stats.pool_seeds(per_seed, 0))
    assert stats.LEVEL == 0.95 and stats.MIN_PATIENTS == 5


def test_values_in_an_object_column_are_read_as_numbers():
    """A pandas column of mixed types arrives as an object array: its numbers still count."""
    values = np.array([1.0, 2, "3.5", np.nan], dtype=object)
    groups = np.array(["a", "b", "c", "c"])
    assert stats.bootstrap_mean(values, groups, n_boot=50)[0] == pytest.approx(6.5 / 3)
    out = stats.resampled_means([(values, groups)], n_boot=50)
    np.testing.assert_allclose(
        out[:, 0], stats.resampled_means([(values.astype(float), groups)], n_boot=50)[:, 0]
    )


def test_values_and_groups_must_be_one_dimensional():
    with pytest.raises(ValueError, match="1-D"):
        stats.bootstrap_mean(np.ones((2, 2)), np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="1-D"):
        stats.resampled_means([(np.ones((2, 2)), np.array([["a", "b"], ["c", "d"]]))])


def test_one_patient_is_a_bootstrap_of_one_group_and_empty_resamples_stay_silent():
    out = stats.resampled_means([(np.array([2.0, 4.0]), np.array(["x", "x"]))], n_boot=5)
    np.testing.assert_array_equal(out[:, 0], 3.0)
    with np.errstate(all="raise"):  # a run without values in a resample is nan, with no floating-point error
        out = stats.resampled_means(
            [(np.array([1.0]), np.array(["x"])), (np.array([2.0]), np.array(["y"]))], n_boot=20
        )
        assert np.isnan(out).any()
        pooled = stats.pool_seeds(np.array([[np.nan, np.nan], [1.0, 2.0]]))
        assert np.isnan(pooled[0]) and np.isfinite(pooled[1])
