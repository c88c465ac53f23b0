"""End to end: `make reproduce PROFILE=tiny` in a temporary folder, then check every file it wrote.

This is the test of the whole product: the Make graph, papermill execution of every notebook on the `tiny`
profile, and the artefacts (tables, figures, models, cards, predictions, executed notebooks). A second `make`
must find everything up to date.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL_SETS = ["all_pretrained", "wrist_pretrained", "wrist_random", "finger_pretrained"]
FIGURES = ["04", "05", "06", "07", "08", "09", "10", "11"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _make(*args: str, roots: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    command = ["make", "--no-print-directory", *args, "PROFILE=tiny",
               f"RESULTS_ROOT={roots / 'results'}", f"DATA_ROOT={roots / 'data'}"]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    roots = tmp_path_factory.mktemp("e2e")
    started = time.perf_counter()
    result = _make("reproduce", roots=roots, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        pytest.fail(f"make reproduce PROFILE=tiny failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    print(f"make reproduce PROFILE=tiny: {seconds:.0f} s")
    (roots / "console.txt").write_text(result.stdout + result.stderr)
    return roots, roots / "results" / "tiny", roots / "data" / "tiny"


def test_the_console_names_every_step_and_nothing_else(tiny_run):
    """`make reproduce` talks: `[k/N] what ... done in`, the epoch lines with an ETA; no papermill command
    lines, TensorFlow notices or kernel warnings (they are in results/<profile>/logs/)."""
    roots, results, _ = tiny_run
    lines = [line for line in (roots / "console.txt").read_text().splitlines() if line.strip()]
    venv = [line for line in lines if "pip" in line or ".venv" in line or "WARNING: Location" in line]
    lines = [line for line in lines if line not in venv]  # a fresh machine sets up .venv first
    steps = [line for line in lines if line.startswith("[")]
    started = [line.split("]")[0] + "]" for line in steps if " ... " in line or line.endswith(" ...")]
    assert started == [f"[{k}/19]" for k in range(1, 20)]  # 4 trainings, the model files checked, ...
    assert sum("epoch " in line and "ETA" in line for line in lines) == 4  # 2 epochs, 4 trainings
    # a training's first epoch continues its label's line; then its second epoch and its done line
    assert len(lines) <= 19 + 4 * 2
    text = "\n".join(lines)
    for noise in ("papermill", "I0000", "oneDNN", "Kernel is running over TCP", "absl"):
        assert noise not in text, noise
    assert "oneDNN custom operations" in (results / "logs" / "20_training_wrist_random.log").read_text()


def test_second_make_does_no_work(tiny_run):
    roots, _, _ = tiny_run
    assert _make("-q", "reproduce", roots=roots, check=False).returncode == 0, (
        "make -q: something is out of date"
    )


def test_phantom_data_and_table2(tiny_run):
    _, results, data = tiny_run
    mura = data / "phantom" / "MURA-v1.1"
    for name in ("train_image_paths.csv", "train_labeled_studies.csv", "valid_image_paths.csv",
                 "valid_labeled_studies.csv", "phantom_annotations.json"):  # fmt: skip
        assert (mura / name).is_file(), name
    table2 = pd.read_csv(results / "tables" / "table2_distribution.csv", index_col=0)
    assert list(table2.index)[:7] == ["Elbow", "Finger", "Hand", "Humerus", "Forearm", "Shoulder", "Wrist"]
    studies = pd.read_csv(mura / "train_labeled_studies.csv", header=None)
    assert table2.iloc[-1][["train_normal", "train_abnormal"]].sum() == len(studies)
    assert (
        (table2.iloc[:7][["train_normal", "train_abnormal", "valid_normal", "valid_abnormal"]] >= 3)
        .all()
        .all()
    )
    for name in ("figure01_samples.png", "samples_per_body_part.png", "data_distributions.png"):
        assert (results / "figures" / name).stat().st_size > 10_000, name


def test_models_cards_histories(tiny_run):
    _, results, _ = tiny_run
    assert (results / "models" / "standin_pretrain" / "backbone.weights.h5").is_file()
    for name in MODEL_SETS:
        folder = results / "models" / name
        assert (folder / "model.keras").is_file()
        card = json.loads((folder / "card.json").read_text())
        assert card["profile"]["name"] == "tiny" and card["model_set"] == name
        assert card["initialisation"] == ("random" if name == "wrist_random" else "standin")
        history = pd.read_csv(folder / "history.csv")
        assert len(history) == card["epochs"] == 2
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"} <= set(history)
        assert 1 <= card["selected_epoch"] <= 2
        assert (results / "notebooks" / f"20_training_{name}.ipynb").is_file()


def test_table1_recomputable_from_predictions(tiny_run):
    from sklearn.metrics import accuracy_score, cohen_kappa_score

    _, results, _ = tiny_run
    table1 = pd.read_csv(results / "tables" / "table1.csv")
    assert len(table1) == 4
    for row, name in zip(table1.itertuples(index=False), MODEL_SETS, strict=True):
        predictions = pd.read_csv(results / "predictions" / f"{name}.csv")
        assert list(predictions.columns) == [
            "path",
            "body_part",
            "study_key",
            "patient",
            "label",
            "probability",
        ]
        y, p = predictions["label"], predictions["probability"] > 0.5
        values = row._asdict()
        assert np.isclose(values["validation_accuracy"], accuracy_score(y, p), atol=1e-9)
        assert np.isclose(values["cohens_kappa"], cohen_kappa_score(y, p), atol=1e-9, equal_nan=True)
    extended = pd.read_csv(results / "tables" / "table1_extended.csv")
    assert len(extended) == 4 and "auroc" in extended.columns


def test_case_figures_have_panels_and_arrays(tiny_run):
    _, results, _ = tiny_run
    for number in FIGURES:
        stem = results / "figures" / f"figure{number}"
        assert stem.with_suffix(".png").stat().st_size > 20_000
        assert stem.with_suffix(".pdf").is_file()
        with np.load(stem.with_suffix(".npz")) as arrays:
            assert arrays["cam"].shape == arrays["input"].shape[:2]
            for stage in ("initial_conv", "block1", "block2", "block3", "block4"):
                assert arrays[stage].ndim == 3 and arrays[stage].shape[-1] == 16, stage
            assert 0.0 <= float(arrays["probability"]) <= 1.0
        assert (results / "notebooks" / f"40_case_figure_{number}.ipynb").is_file()


def test_executed_notebooks_have_no_errors(tiny_run):
    _, results, _ = tiny_run
    notebooks = sorted((results / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 1 + 1 + 4 + 1 + 8 + 1
    for path in notebooks:
        for cell in json.loads(path.read_text())["cells"]:
            for output in cell.get("outputs", []):
                assert output.get("output_type") != "error", f"{path.name}: {output.get('ename')}"


def test_executed_notebooks_show_their_plots_and_no_tensorflow_notices(tiny_run):
    """The executed notebooks are the record: every notebook that draws embeds its figures as PNG."""
    _, results, _ = tiny_run
    drawing = ["00_data_exploration", "10_standin_pretraining", "20_training_wrist_random", "30_evaluation",
               "40_case_figure_04", "50_localisation"]  # fmt: skip
    for name in drawing:
        outputs = [o for c in json.loads((results / "notebooks" / f"{name}.ipynb").read_text())["cells"]
                   for o in c.get("outputs", [])]  # fmt: skip
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        texts = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                        for o in outputs)  # fmt: skip
        assert images, f"{name}: no embedded plot"
        assert "<Figure size" not in texts or len(images) >= texts.count("<Figure size"), name
        assert "oneDNN custom operations" not in texts and "I0000 " not in texts, name


def test_every_notebook_runs_as_opened_in_jupyterlab(tiny_run, tmp_path):
    """Each notebook, executed by nbclient the way JupyterLab runs it: kernel in ``notebooks/``, no variable
    from Make or the tests in the environment, only the parameters cell edited (profile and folders, as a
    user would). Relative paths must then resolve at the project root, and the cell alone decides the profile."""
    import shutil

    import nbformat
    from nbclient import NotebookClient

    _, results, data = tiny_run
    copy = tmp_path / "results"  # the notebooks write (10 retrains the stand-in): keep the e2e run's files
    shutil.copytree(results, copy, ignore=shutil.ignore_patterns("notebooks", "logs", "seeds"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PROFILE", "MPLBACKEND") and not k.startswith("DENSENET_INTERP")}  # fmt: skip
    env["PROFILE"] = "mini"  # a stale variable in the user's shell must not override the cell
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        params = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        assert 'profile = "mini"' in params.source, path.name
        params.source = params.source.replace('profile = "mini"', 'profile = "tiny"')
        for name, value in (("results_dir", copy), ("data_dir", data)):
            lines = [f'{name} = "{value}"' if line.startswith(f"{name} = ") else line
                     for line in params.source.splitlines()]  # fmt: skip
            params.source = "\n".join(lines)
        client = NotebookClient(notebook, timeout=600, kernel_name="densenet-interp",
                                resources={"metadata": {"path": str(ROOT / "notebooks")}})  # fmt: skip
        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            client.execute()
        except Exception as exc:  # noqa: BLE001 - name the notebook, then fail
            pytest.fail(f"{path.name} fails when run as opened in JupyterLab: {str(exc)[-1500:]}")
        finally:
            os.environ.clear()
            os.environ.update(old)
    assert (copy / "tables" / "table1.csv").stat().st_mtime > (
        results / "tables" / "table1.csv"
    ).stat().st_mtime


def test_make_seeds_trains_each_seed_as_its_own_target_and_pools_them(tiny_run):
    """`make seeds SEEDS=2 -j2`: seed 1 trained into its own folders (seed 0 untouched), then pooled tables."""
    roots, results, _ = tiny_run
    main_models = {
        name: (results / "models" / name / "model.keras").stat().st_mtime_ns for name in MODEL_SETS
    }
    planned = _make("-n", "seeds", "SEEDS=2", roots=roots).stdout
    for name in MODEL_SETS:  # one recipe per (seed, model set): make -j, or other machines, can split them
        assert planned.count(f"train {name} --profile tiny --seed 1 ") == 1, name
    result = _make("-j2", "seeds", "SEEDS=2", roots=roots, check=False)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-4000:]}"
    for name in MODEL_SETS:
        card = json.loads((results / "seeds" / "seed1" / "models" / name / "card.json").read_text())
        assert card["seed"] == 1 and card["model_set"] == name
        assert (results / "models" / name / "model.keras").stat().st_mtime_ns == main_models[name]
    ours = pd.read_csv(results / "seeds" / "seed1" / "predictions" / "wrist_random.csv")
    main = pd.read_csv(results / "predictions" / "wrist_random.csv")
    assert list(ours["path"]) == list(main["path"]) and not np.allclose(
        ours["probability"], main["probability"]
    )
    table = pd.read_csv(results / "tables" / "table1_seeds.csv")
    assert len(table) == 4 * 3 and set(table["seeds"]) == {2}
    assert (table["seeds_min"] <= table["seeds_mean"] + 1e-12).all()
    assert (table["seeds_mean"] <= table["seeds_max"] + 1e-12).all()
    claims = pd.read_csv(results / "tables" / "claims_seeds.csv")
    assert set(claims["mass"]) == {"relative", "positive"} and claims["verdict"].str.len().min() > 10
    assert len(pd.read_csv(results / "tables" / "shortcut_seeds.csv")) == 4
    assert "Table 1 over 2 training seeds" in (results / "tables" / "table1_seeds.md").read_text()
    assert _make("-q", "seeds", "SEEDS=2", roots=roots, check=False).returncode == 0, (
        "make -q seeds: out of date"
    )


def test_every_figure_and_table_names_its_data(tiny_run):
    """A PNG, PDF or CSV copied out of the results alone still says which data (phantom or MURA) it shows."""
    from labels_support import unlabelled_files

    _, results, _ = tiny_run
    assert (
        len(list((results / "figures").glob("*.png"))) >= 12
        and len(list((results / "tables").glob("*.csv"))) >= 10
    )
    assert unlabelled_files(results, "tiny") == []
