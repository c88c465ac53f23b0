"""Seed noise: the crossed seeds x patients bootstrap, Table 1 over seeds, and verdicts pooled over seeds.

The rules protected here: a claim or comparison is *supported* only when the interval that holds both the
seed-to-seed and the patient variation excludes no effect (seeds that disagree make it inconclusive even
where every single seed, or all seeds' images lumped together, would look decisive); its side follows the
paper's claim (a reversed effect is *contradicted*); the main run's interval is its patient bootstrap; the
seed spread is the standard deviation of the per-seed values; and two workers never train the same run.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from densenet_interp import cli
from densenet_interp.evaluate import metrics, seeds
from densenet_interp.evaluate.claims import ClaimSample, claim_from_sample
from densenet_interp.evaluate.stats import (
    bootstrap_distribution,
    bootstrap_mean,
    percentile_interval,
    pool_seeds,
    resampled_means,
)
from densenet_interp.paths import Layout, RunFiles, exclusive

PATIENTS = np.repeat([f"p{i:02d}" for i in range(30)], 2)  # 30 patients, 2 images each


def _values(mean: float, spread: float = 0.05, seed: int = 0) -> np.ndarray:
    return mean + spread * np.random.default_rng(seed).standard_normal(PATIENTS.size)


# ----------------------------------------------------------------------------------------------------------
# the bootstrap


def test_one_seed_column_is_that_runs_patient_bootstrap():
    values = _values(0.2)
    column = resampled_means([(values, PATIENTS)], n_boot=400, seed=3)[:, 0]
    _, low, high = bootstrap_mean(values, PATIENTS, n_boot=400, seed=3)
    assert percentile_interval(column) == pytest.approx((low, high))
    assert percentile_interval(pool_seeds(column[:, None], seed=3)) == pytest.approx((low, high))


def test_seeds_share_the_patient_draw():
    """Row b resamples the same patients for every seed: identical seeds give identical columns."""
    values = _values(0.2)
    boot = resampled_means([(values, PATIENTS), (values, PATIENTS)], n_boot=200)
    np.testing.assert_array_equal(boot[:, 0], boot[:, 1])


def test_disagreeing_seeds_widen_the_pooled_interval():
    agreeing = [(_values(0.10, seed=s), PATIENTS) for s in range(5)]
    disagreeing = [
        (_values(mean, seed=s), PATIENTS) for s, mean in enumerate((0.30, -0.10, 0.25, -0.05, 0.10))
    ]
    width = {}
    for name, samples in (("agree", agreeing), ("disagree", disagreeing)):
        low, high = percentile_interval(pool_seeds(resampled_means(samples, n_boot=500), seed=0))
        width[name] = high - low
    assert width["disagree"] > 3 * width["agree"]


def test_non_finite_values_and_empty_seeds_are_left_out():
    values = _values(0.2)
    with_nan = values.copy()
    with_nan[:10] = np.nan
    boot = resampled_means([(with_nan, PATIENTS), (np.array([]), np.array([], dtype=object))], n_boot=50)
    assert np.isfinite(boot[:, 0]).all() and np.isnan(boot[:, 1]).all()
    pooled = pool_seeds(boot)  # a seed without values drops out: what is left is the other seed
    finite = np.isfinite(pooled)
    assert finite.mean() > 0.5
    np.testing.assert_allclose(pooled[finite], boot[finite, 0])
    with pytest.raises(ValueError, match="at least one seed"):
        pool_seeds(np.empty((10, 0)))


# ----------------------------------------------------------------------------------------------------------
# claims pooled over seeds


def _decided(value) -> bool | None:
    """A table's ``supported`` cell as True, False or None (pandas stores bools as numpy bools, None as nan)."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else bool(value)


def _sample(a: np.ndarray, sign: int = -1) -> ClaimSample:
    values = pd.DataFrame({"path": [f"img{i}" for i in range(a.size)], "patient": PATIENTS, "a": a, "b": 0.0})
    return ClaimSample(
        "2a anatomy (random init)", "statement", "test", sign, ("a", "b"), "difference", values
    )


def _pooled(samples):
    per_seed = [claim_from_sample(s, 400, 0) for s in samples]
    return seeds._pooled_claim(samples, per_seed, 400, 0)


def test_a_claim_every_seed_supports_is_supported_and_reversed_is_contradicted():
    assert _pooled([_sample(_values(-0.2, seed=s)) for s in range(4)])["supported"] is True
    reversed_ = _pooled([_sample(_values(+0.2, seed=s)) for s in range(4)])
    assert reversed_["supported"] is False and reversed_["verdict"].startswith("contradicted")


def test_seeds_that_disagree_leave_a_claim_inconclusive_even_where_lumped_images_look_decisive():
    means = (-0.30, -0.25, +0.10, -0.20, +0.15)
    samples = [_sample(_values(m, seed=s)) for s, m in enumerate(means)]
    pooled = _pooled(samples)
    assert pooled["supported"] is None and pooled["verdict"].startswith("inconclusive")
    assert pooled["seeds_supported"] == 3 and pooled["seeds_contradicted"] == 2
    # the rule that is NOT used: every seed's images in one patient bootstrap call it decisive
    lumped = np.concatenate([s.differences.to_numpy() for s in samples])
    _, low, high = bootstrap_mean(lumped, np.tile(PATIENTS, len(samples)), n_boot=400, seed=0)
    assert high < 0


def test_pooled_claims_read_every_seeds_localisation_table():
    rng = np.random.default_rng(0)
    rows = []
    for model_set, anatomy in (("wrist_pretrained", 0.6), ("wrist_random", 0.4)):
        for i, patient in enumerate(PATIENTS):
            share = anatomy + 0.02 * rng.standard_normal()
            rows.append({"model_set": model_set, "path": f"img{i}", "patient": patient, "kind": "normal",
                         "body_part": "XR_WRIST", "label": 0, "correct": True, "lesion_chance": 0.0,
                         "legend_chance": 0.0, "anatomy_chance": 0.3, "frame_chance": 0.0,
                         **{f"{r}_share_{m}": share if r == "anatomy" else 0.0
                            for r in ("lesion", "legend", "frame", "anatomy") for m in ("relative", "positive")}})  # fmt: skip
    good = pd.DataFrame(rows)
    flipped = good.assign(model_set=good["model_set"].map({"wrist_pretrained": "wrist_random",
                                                           "wrist_random": "wrist_pretrained"}))  # fmt: skip
    table = seeds.claims_seeds({0: good, 1: good, 2: good}, {}, n_boot=200, masses=("relative",))
    row = table.set_index("claim").loc["2a anatomy (random init)"]
    assert _decided(row["supported"]) is True
    table = seeds.claims_seeds({0: good, 1: flipped, 2: flipped}, {}, n_boot=200, masses=("relative",))
    row = table.set_index("claim").loc["2a anatomy (random init)"]
    assert row["per_seed"] == "supported; contradicted; contradicted"
    assert _decided(row["supported"]) is None


# ----------------------------------------------------------------------------------------------------------
# Table 1 over seeds and its comparisons


def _predictions(accuracy_by_set: dict[str, float], seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, acc in accuracy_by_set.items():
        label = np.tile([0, 1], 40)
        right = rng.random(label.size) < acc
        probability = np.where(right == (label == 1), 0.8, 0.2)
        out[name] = pd.DataFrame({"path": [f"{name}/img{i}" for i in range(label.size)], "label": label,
                                  "probability": probability, "patient": np.repeat([f"q{i}" for i in range(40)], 2),
                                  "body_part": "XR_WRIST" if "wrist" in name else
                                  ("XR_FINGER" if "finger" in name else "XR_HAND")})  # fmt: skip
    return out


def test_table1_seeds_reports_main_interval_spread_and_paper():
    runs = {
        k: _predictions({"wrist_pretrained": 0.70 + 0.05 * k, "wrist_random": 0.6}, seed=k) for k in range(3)
    }
    table = seeds.table1_seeds(runs, n_boot=300).set_index(["model_set", "metric"])
    row = table.loc[("wrist_pretrained", "accuracy")]
    values = [metrics.accuracy(runs[k]["wrist_pretrained"]["label"], runs[k]["wrist_pretrained"]["probability"])
              for k in range(3)]  # fmt: skip
    assert row["seeds_mean"] == pytest.approx(np.mean(values))
    assert row["seeds_sd"] == pytest.approx(np.std(values, ddof=1))
    assert (row["seeds_min"], row["seeds_max"]) == pytest.approx((min(values), max(values)))
    assert row["main_run"] == pytest.approx(values[0]) and row["paper"] == 0.862
    boot = bootstrap_distribution(runs[0]["wrist_pretrained"], {"accuracy": metrics.accuracy}, 300, 0)
    assert (row["main_low"], row["main_high"]) == pytest.approx(
        percentile_interval(boot["accuracy"].to_numpy())
    )
    assert np.isnan(table.loc[("wrist_pretrained", "auroc"), "paper"])


def test_table1_comparison_follows_the_papers_side():
    better = {k: _predictions({"wrist_pretrained": 0.9, "wrist_random": 0.55}, seed=k) for k in range(3)}
    worse = {k: _predictions({"wrist_pretrained": 0.55, "wrist_random": 0.9}, seed=k) for k in range(3)}
    for runs, expected in ((better, True), (worse, False)):
        table = seeds.comparisons_seeds(runs, n_boot=300)
        row = table[(table["a"] == "wrist_pretrained") & (table["metric"] == "accuracy")].iloc[0]
        assert row["claimed_sign"] == 1 and row["paper_difference"] == pytest.approx(0.084)
        assert _decided(row["supported"]) is expected
    # the paper has all extremities BELOW wrist-only: a lower all_pretrained supports it, a higher one contradicts
    for acc_all, expected in ((0.55, True), (0.9, False)):
        runs = {
            k: _predictions({"all_pretrained": acc_all, "wrist_pretrained": 0.75}, seed=k) for k in range(3)
        }
        row = seeds.comparisons_seeds(runs, n_boot=300).set_index("metric").loc["accuracy"]
        assert row["comparison"] == "all extremity types vs wrist-only" and row["claimed_sign"] == -1
        assert row["paper_difference"] == pytest.approx(0.830 - 0.862)
        assert _decided(row["supported"]) is expected
    mixed = {0: better[0], 1: worse[1], 2: better[2]}
    row = seeds.comparisons_seeds(mixed, n_boot=300).iloc[0]
    assert (
        _decided(row["supported"]) is None and row["seeds_supported"] == 2 and row["seeds_contradicted"] == 1
    )


def test_table1_seeds_needs_the_main_run():
    with pytest.raises(ValueError, match="seed 0"):
        seeds.table1_seeds({1: _predictions({"wrist_random": 0.6}, 1)}, n_boot=10)


# ----------------------------------------------------------------------------------------------------------
# where seeds live, and the lock that keeps two workers off one run


def test_seed_layouts(tmp_path):
    layout = Layout(tmp_path / "results", tmp_path / "data")
    assert layout.seed(0) == layout
    assert layout.seed(3).model_dir("wrist_random") == tmp_path / "results/seeds/seed3/models/wrist_random"
    assert layout.seed(3).cache_dir == layout.cache_dir
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            layout.seed(bad)


def test_a_second_worker_waits_for_the_run_and_reuses_it(tmp_path):
    """While one worker holds a run's lock, train_model_set waits; it then returns the finished card untrained."""
    from densenet_interp.models.training import train_model_set

    files = RunFiles(tmp_path / "run")
    files.folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(3); "
         "open(sys.argv[2], 'w').write('{\"model_set\": \"other worker\"}'); open(sys.argv[3], 'w').write('x')",
         str(files.lock), str(files.card), str(files.model)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    lines: list[str] = []
    started = time.perf_counter()
    card = train_model_set("tiny", "wrist_random", tmp_path / "no-data", files.folder, log=lines.append)
    holder.wait(10)
    assert card == {"model_set": "other worker"}
    assert time.perf_counter() - started > 1.0
    assert lines[0].startswith("waiting: another process holds") and "trained meanwhile" in lines[-1]


def test_exclusive_serialises_threads(tmp_path):
    order: list[str] = []

    def worker(name):
        with exclusive(tmp_path / "x.lock"):
            order.append(f"{name} in")
            time.sleep(0.2)
            order.append(f"{name} out")

    threads = [threading.Thread(target=worker, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


# ----------------------------------------------------------------------------------------------------------
# the command


def test_summarise_names_the_missing_seed_in_one_line(tmp_path, capsys):
    status = cli.main(
        ["seeds", "summarise", "--profile", "tiny", "--seeds", "2", "--results-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "all_pretrained.csv" in err and "make seeds" in err


@pytest.mark.parametrize("argv", [["seeds", "summarise", "--seeds", "0"], ["seeds", "evaluate", "--seed", "-1"],
                                  ["seeds", "evaluate", "--seed", "x"], ["train", "wrist_random", "--seed", "-2"]])  # fmt: skip
def test_bad_seed_arguments_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "expected" in capsys.readouterr().err
