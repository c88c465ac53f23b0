"""The phantom difficulty benchmark (how the phantom's defaults were calibrated) runs and reports what it did."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "phantom_difficulty.py"


@pytest.fixture(scope="module")
def difficulty():
    spec = importlib.util.spec_from_file_location("phantom_difficulty", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_setting_values_parse_to_numbers_and_tuples(difficulty):
    assert difficulty._pairs(["epochs=3", "lesion_scale=2.5", "lr_drop_fractions=0.5,0.75"], "--set") == {
        "epochs": 3,
        "lesion_scale": 2.5,
        "lr_drop_fractions": (0.5, 0.75),
    }
    with pytest.raises(SystemExit, match="expected NAME=VALUE, got 'epochs'"):
        difficulty._pairs(["epochs"], "--set")


def test_tiny_run_reports_accuracy_and_per_kind_detection(difficulty, tmp_path, monkeypatch):
    monkeypatch.setenv("DENSENET_INTERP_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DENSENET_INTERP_DATA", str(tmp_path / "data"))
    argv = ["--name", "t", "--profile", "tiny", "--model-set", "wrist_random"]
    assert difficulty.main([*argv, "--knobs", "lesion_scale=2.0", "--set", "epochs=1"]) == 0
    report = json.loads(
        (tmp_path / "results" / "tiny" / "benchmarks" / "phantom_difficulty_t.json").read_text()
    )
    assert report["knobs"]["lesion_scale"] == 2.0 and report["profile_overrides"] == {"epochs": 1}
    assert 0.0 <= report["valid_accuracy"] <= 1.0 and 0.0 <= report["train_accuracy"] <= 1.0
    manifest = json.loads(
        (tmp_path / "data/tiny/difficulty/data/t/MURA-v1.1/phantom_manifest.json").read_text()
    )
    assert manifest["knobs"]["lesion_scale"] == 2.0, "the dataset was generated with the knobs asked for"
    kinds = {row["kind"] for row in report["valid_per_kind"]}
    assert "normal" in kinds and len(kinds) >= 2
    assert sum(row["n"] for row in report["valid_per_kind"]) > 0


def test_a_name_reused_with_other_knobs_is_refused(difficulty, tmp_path, monkeypatch):
    monkeypatch.setenv("DENSENET_INTERP_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DENSENET_INTERP_DATA", str(tmp_path / "data"))
    from densenet_interp.phantom import DifficultyKnobs, generate_dataset

    data_dir = tmp_path / "data" / "tiny" / "difficulty" / "data" / "u"
    generate_dataset(data_dir, 0.004, long_side=64, knobs=DifficultyKnobs(lesion_scale=2.0))
    argv = ["--name", "u", "--profile", "tiny", "--model-set", "wrist_random", "--knobs", "lesion_scale=2.5"]
    with pytest.raises(SystemExit, match="generated with other knobs; use another --name"):
        difficulty.main(argv)


def _load(name: str):
    path = SCRIPT.with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_host_memory_benchmark_measures_both_methods_on_a_cache_it_deletes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DENSENET_INTERP_RESULTS", str(tmp_path / "results"))
    host_memory = _load("host_memory")
    argv = ["--train", "600", "--valid", "60", "--size", "96", "--batches", "4", "--warmup", "1", "--compare"]
    code = host_memory.main([*argv, "--dir", str(tmp_path)])
    report = json.loads((tmp_path / "results" / "paper" / "benchmarks" / "host_memory.json").read_text())
    assert code == (0 if report["within_budget"] else 1) and report["within_budget"] == (
        report["peak_ratio"] <= 1.3
    )
    current, tensor = report["runs"]
    assert (current["method"], tensor["method"]) == ("current", "tensor")
    assert current["train_images"] == 600 and current["valid_images"] == 60
    assert current["train_array_gb"] == round(600 * 96 * 96 / 1e9, 3)
    assert current["augmented_train_images_per_second"] > 0 and report["peak_ratio"] == current["peak_ratio"]
    assert list(tmp_path.glob("host-memory-*")) == []  # the temporary cache is gone


def test_the_cache_build_benchmark_reports_rates_per_core(tmp_path, monkeypatch, write_mura_folder):
    monkeypatch.setenv("DENSENET_INTERP_RESULTS", str(tmp_path / "results"))
    root = write_mura_folder(tmp_path / "data")
    assert _load("cache_build").main(["--phantom", str(root), "--size", "32"]) == 0
    report = json.loads((tmp_path / "results" / "paper" / "benchmarks" / "cache_build.json").read_text())
    assert report["images"] > 0 and report["runs"]["one_thread"]["threads"] == 1
    assert report["images_per_second_per_core"] == report["runs"]["one_thread"]["images_per_second"] > 0
    assert report["mura_minutes_at_best_rate"] > 0
