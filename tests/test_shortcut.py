"""Tests of the shortcut experiment: the flag rule, the summary on hand-made per-image tables, the outputs.

The slow test runs the whole experiment on the ``tiny`` profile (generate, train twice, evaluate, write).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from densenet_interp.cli import main
from densenet_interp.experiments import shortcut


def _per_image(model: str, eval_set: str, legend_share: float, correct: float, n: int = 30, seed: int = 0):
    """``n`` wrist validation images (one patient each, half with a legend) as evaluated by one model."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 2
    is_correct = rng.uniform(size=n) < correct
    probability = np.where(is_correct == (label == 1), 0.8, 0.2)
    has_legend = np.arange(n) % 4 < 2
    return pd.DataFrame(
        {
            "checkpoint": "selected",
            "model": model,
            "eval_set": eval_set,
            "model_set": "wrist_pretrained",
            "path": [f"{eval_set}/img{i}.png" for i in range(n)],
            "patient": [f"p{i}" for i in range(n)],
            "label": label,
            "probability": probability,
            "correct": is_correct,
            "legend_share_relative": np.where(has_legend, legend_share + rng.uniform(-0.03, 0.03, n), 0.0),
            "legend_chance": np.where(has_legend, 0.05, 0.0),
        }
    )


def _experiment(shortcut_legend: float) -> pd.DataFrame:
    return pd.concat(
        [
            _per_image("control", "control", 0.05, 0.8, seed=1),
            _per_image("control", "shortcut", 0.05, 0.8, seed=2),
            _per_image("shortcut", "control", shortcut_legend, 0.55, seed=3),
            _per_image("shortcut", "shortcut", shortcut_legend, 0.95, seed=4),
        ],
        ignore_index=True,
    )


def test_the_legend_reading_model_is_flagged_even_where_its_accuracy_looks_fine():
    summary = shortcut.summarise(_experiment(shortcut_legend=0.6), n_boot=300, seed=0)
    assert (summary["checkpoint"] == "selected").all()
    summary = summary.set_index(["model", "eval_set"])
    assert summary.loc[("shortcut", "shortcut"), "accuracy"] > summary.loc[("control", "control"), "accuracy"]
    assert summary.loc[("shortcut", "shortcut"), "shortcut_flag"]
    assert summary.loc[("shortcut", "control"), "shortcut_flag"]
    assert not summary["shortcut_flag"].loc["control"].any()
    assert summary.loc[("control", "control"), "legend_vs_control"] == 0.0
    assert (
        summary.loc[("shortcut", "shortcut"), "own_data"]
        and not summary.loc[("shortcut", "control"), "own_data"]
    )
    assert summary.loc[("shortcut", "shortcut"), "n_legend_images"] == 16


def test_a_model_that_ignores_the_legend_is_not_flagged():
    summary = shortcut.summarise(_experiment(shortcut_legend=0.05), n_boot=300, seed=0)
    assert not summary["shortcut_flag"].any()


def test_flag_rule_needs_both_above_chance_and_above_control():
    summary = pd.DataFrame(
        {
            "legend_excess_low": [0.1, 0.1, -0.1, np.nan, 0.1],
            "legend_vs_control_low": [0.05, -0.01, 0.05, 0.2, 0.05],
            "n_legend_patients": [20, 20, 20, 20, 2],
        }
    )
    assert shortcut.flag_shortcut(summary).tolist() == [True, False, False, False, False]
    with pytest.raises(ValueError, match=r"summary lacks column\(s\) \['legend_vs_control_low'\]"):
        shortcut.flag_shortcut(summary.drop(columns="legend_vs_control_low"))


def test_outputs_are_written_with_the_csv_last(tmp_path):
    per_image = _experiment(shortcut_legend=0.6)
    summary = shortcut.summarise(per_image, n_boot=100)
    shortcut.write_outputs(
        summary, per_image, tmp_path, "fixture data", (shortcut.CONTROL, shortcut.SHORTCUT)
    )
    tables = tmp_path / "tables"
    written = sorted(tables.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert written[-1].name == "shortcut.csv"
    assert (tmp_path / "figures" / "shortcut.png").stat().st_size > 5_000
    text = (tables / "shortcut.md").read_text()
    assert "**shortcut**" in text and "fixture data" in text and "the framework flags it" in text
    assert len(pd.read_csv(tables / "shortcut.csv")) == 4


def test_main_refuses_a_profile_without_phantom(capsys):
    assert main(["shortcut", "--profile", "paper"]) == 2
    assert "needs the phantom" in capsys.readouterr().err


def test_main_reports_a_missing_standin_backbone_in_one_line_before_any_work(tmp_path, capsys):
    missing = tmp_path / "nowhere.weights.h5"
    status = main(["shortcut", "--profile", "tiny", "--results-dir", str(tmp_path), "--data-dir", str(tmp_path),
                            "--standin-weights", str(missing)])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "stand-in pre-trained weights not found" in err
    assert not (tmp_path / "shortcut").exists()  # nothing was generated


@pytest.mark.slow
def test_run_shortcut_experiment_on_the_tiny_profile(tmp_path, tiny_profile_model):
    """The whole experiment on ``tiny``: two datasets, two trainings, four evaluations, all outputs; resumable."""
    from densenet_interp.models.weights import save_backbone_weights

    standin = tmp_path / "backbone.weights.h5"
    save_backbone_weights(tiny_profile_model(include_top=False), standin)
    lines = []
    summary = shortcut.run_shortcut_experiment("tiny", tmp_path / "data", tmp_path / "results", standin,
                                               n_boot=50, log=lines.append)  # fmt: skip
    cells = [
        ("control", "control"),
        ("control", "shortcut"),
        ("shortcut", "control"),
        ("shortcut", "shortcut"),
    ]
    assert summary[["model", "eval_set"]].apply(tuple, axis=1).tolist() == cells * 2
    assert summary["checkpoint"].tolist() == ["selected"] * 4 + ["last"] * 4
    assert (summary["n_images"] > 0).all() and summary["accuracy"].between(0, 1).all()
    for name in (
        "tables/shortcut.csv",
        "tables/shortcut.md",
        "tables/shortcut_per_image.csv",
        "figures/shortcut.png",
    ):
        assert (tmp_path / "results" / name).is_file(), name
    for variant in ("control", "shortcut"):
        assert (tmp_path / "results" / "models" / f"shortcut_{variant}" / "model.keras").is_file()
    assert any("generated phantom" in line for line in lines)
    again: list[str] = []
    shortcut.run_shortcut_experiment("tiny", tmp_path / "data", tmp_path / "results", standin, n_boot=50,
                                     log=again.append)  # fmt: skip
    assert not any(
        "generated" in line or "epoch" in line for line in again
    )  # nothing regenerated or retrained


def test_a_finished_variant_is_reused_when_only_the_departures_prose_changed(tmp_path, write_small_mura):
    """Rewording a departure (prose) must not retrain; another recipe (epochs) or other data must."""
    import dataclasses
    import json

    from densenet_interp.data.mura import fingerprint, read_mura
    from densenet_interp.experiments.shortcut import _drop_stale_model
    from densenet_interp.profiles import get_profile

    mura = write_small_mura(tmp_path / "data", [("train", "XR_WRIST", "patient00001", "study1_positive", 1)],
                            images=False)  # fmt: skip
    profile = get_profile("tiny")
    run = tmp_path / "run"
    run.mkdir()

    def card(p, fp):
        (run / "card.json").write_text(json.dumps({"profile": p.to_dict(), "data_fingerprint": fp}))

    current = fingerprint(read_mura(mura))
    card(dataclasses.replace(profile, departures=("worded otherwise",)), current)
    _drop_stale_model(run, mura, profile, log=lambda line: None)
    assert (run / "card.json").is_file()
    card(dataclasses.replace(profile, epochs=profile.epochs + 1), current)
    _drop_stale_model(run, mura, profile, log=lambda line: None)
    assert not run.exists()
    run.mkdir()
    card(profile, "another fingerprint")
    _drop_stale_model(run, mura, profile, log=lambda line: None)
    assert not run.exists()
