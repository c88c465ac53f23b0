"""Tests for densenet_interp.evaluate.metrics: metrics agree with scikit-learn, study aggregation, the patient-level
bootstrap, and the layout of Table 1 and its extended version."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, recall_score, roc_auc_score

from densenet_interp.errors import DataError
from densenet_interp.evaluate import metrics as ev
from densenet_interp.evaluate import stats
from densenet_interp.models.inference import PREDICTION_COLUMNS
from densenet_interp.profiles import MODEL_SETS


def sklearn_metrics(y, prob) -> dict[str, float]:
    pred = (np.asarray(prob) > 0.5).astype(int)
    one_class = len(set(y)) < 2
    return {
        "n": len(y),
        "accuracy": accuracy_score(y, pred),
        "kappa": cohen_kappa_score(y, pred, labels=[0, 1]),
        "auroc": math.nan if one_class else roc_auc_score(y, prob),
        "sensitivity": recall_score(y, pred, pos_label=1, zero_division=np.nan),
        "specificity": recall_score(y, pred, pos_label=0, zero_division=np.nan),
    }


def assert_same_metrics(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        np.testing.assert_allclose(ours[key], value, rtol=0, atol=1e-12, equal_nan=True, err_msg=key)


def predictions(n_patients=40, images_per_patient=(1, 6), seed=0, body_part="XR_WRIST", skill=0.35):
    """A predictions frame: patients with 1-2 studies, studies with several images, informative probabilities."""
    rng = np.random.default_rng(seed)
    rows = []
    for patient in range(n_patients):
        for study in range(1, rng.integers(1, 3) + 1):
            label = int(rng.integers(0, 2))
            for image in range(1, rng.integers(*images_per_patient) + 1):
                prob = float(np.clip(label * skill + rng.random() * (1 - skill), 0, 1))
                key = f"valid/{body_part}/patient{patient:05d}/study{study}"
                rows.append(
                    [
                        f"MURA-v1.1/{key}_x/image{image}.png",
                        body_part,
                        key,
                        f"patient{patient:05d}",
                        label,
                        prob,
                    ]
                )
    return pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))


# ----------------------------------------------------------------------------------------------------------
# metrics


@pytest.mark.parametrize("seed", range(6))
def test_image_metrics_equal_sklearn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    y = rng.integers(0, 2, n)
    prob = np.clip(y * 0.2 + rng.random(n) * 0.8, 0, 1)
    if seed % 2:
        prob = np.round(prob, 1)  # many ties, and values exactly at the threshold
    assert_same_metrics(ev.image_metrics(y, prob), sklearn_metrics(y, prob))


@pytest.mark.parametrize(
    ("y", "prob"),
    [
        ([1, 1, 1, 1], [0.9, 0.2, 0.7, 0.6]),  # one class: auroc and specificity undefined
        ([0, 0, 0], [0.1, 0.6, 0.3]),  # one class: sensitivity undefined
        ([1, 1, 1], [0.9, 0.8, 0.7]),  # everything agrees on one class: kappa undefined
        ([0, 0], [0.9, 0.8]),  # all wrong, one class each side
        ([0, 1], [0.5, 0.5]),  # exactly 0.5 is normal (the paper: "above 0.5" is abnormal)
        ([1], [1.0]),
    ],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_image_metrics_equal_sklearn_on_edge_cases(y, prob):
    assert_same_metrics(ev.image_metrics(y, prob), sklearn_metrics(y, prob))


def test_threshold_is_strictly_above():
    assert ev.image_metrics([0, 1], [0.5, 0.5])["accuracy"] == 0.5
    assert ev.image_metrics([0, 1], [0.5, 0.5], threshold=0.4)["accuracy"] == 0.5
    assert ev.image_metrics([0, 1], [0.3, 0.5], threshold=0.4)["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("y", "prob", "match"),
    [
        ([], [], "at least one"),
        ([0, 2], [0.1, 0.2], "0 or 1"),
        ([0, 1], [0.1, 1.2], r"\[0, 1\]"),
        ([0], [0.1, 0.2], "equal"),
    ],
)
def test_image_metrics_reject_bad_input(y, prob, match):
    with pytest.raises(ValueError, match=match):
        ev.image_metrics(y, prob)


# ----------------------------------------------------------------------------------------------------------
# studies and predictions files


def test_study_predictions_average_image_probabilities():
    frame = pd.DataFrame(
        {
            "path": ["a1", "a2", "a3", "b1", "c1", "c2"],
            "body_part": ["XR_WRIST"] * 3 + ["XR_HAND"] * 3,
            "study_key": ["s/a"] * 3 + ["s/b"] + ["s/c"] * 2,
            "patient": ["p1"] * 3 + ["p1"] + ["p2"] * 2,
            "label": [1, 1, 1, 0, 0, 0],
            "probability": [0.2, 0.5, 0.8, 0.9, 0.1, 0.4],
        }
    )
    studies = ev.study_predictions(frame)
    assert studies["study_key"].tolist() == ["s/a", "s/b", "s/c"]
    np.testing.assert_allclose(studies["probability"], [0.5, 0.9, 0.25])
    assert studies["n_images"].tolist() == [3, 1, 2]
    assert studies["label"].tolist() == [1, 0, 0]
    assert studies["patient"].tolist() == ["p1", "p1", "p2"]
    assert studies["body_part"].tolist() == ["XR_WRIST", "XR_HAND", "XR_HAND"]
    frame.loc[1, "label"] = 0
    with pytest.raises(ValueError, match="s/a"):
        ev.study_predictions(frame)


def test_read_predictions_checks_the_contract(tmp_path):
    frame = predictions(n_patients=5)
    frame.to_csv(tmp_path / "wrist_pretrained.csv", index=False)
    pd.testing.assert_frame_equal(ev.read_predictions(tmp_path / "wrist_pretrained.csv"), frame)
    frame.drop(columns="patient").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="patient") as info:
        ev.read_predictions(tmp_path / "bad.csv")
    assert info.value.path == str(tmp_path / "bad.csv")
    frame.assign(probability=frame["probability"] + 1).to_csv(tmp_path / "big.csv", index=False)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        ev.read_predictions(tmp_path / "big.csv")
    with pytest.raises(DataError, match="not found"):
        ev.read_predictions(tmp_path / "absent.csv")


# ----------------------------------------------------------------------------------------------------------
# bootstrap


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    frame = predictions(n_patients=60, seed=3)
    point = ev.accuracy(frame["label"], frame["probability"])
    low, high = stats.bootstrap_ci(frame, ev.accuracy, n_boot=500, seed=7)
    assert low < point < high
    assert (low, high) == stats.bootstrap_ci(frame, ev.accuracy, n_boot=500, seed=7)
    assert (low, high) != stats.bootstrap_ci(frame, ev.accuracy, n_boot=500, seed=8)
    narrow = stats.bootstrap_ci(frame, ev.accuracy, n_boot=500, seed=7, level=0.5)
    assert low <= narrow[0] <= narrow[1] <= high


def _patients_all_right_or_all_wrong() -> pd.DataFrame:
    """10 patients x 20 images; 7 patients' images are all classified right, 3 patients' all wrong."""
    rows = []
    for patient in range(10):
        right = patient < 7
        for image in range(20):
            label = image % 2
            prob = 0.9 if label == right else 0.1
            rows.append(
                [f"i{patient}_{image}", "XR_WRIST", f"s{patient}_{label}", f"p{patient}", label, prob]
            )
    return pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))


def test_bootstrap_resamples_whole_patients():
    frame = _patients_all_right_or_all_wrong()
    by_patient = stats.bootstrap_distribution(frame, {"acc": ev.accuracy}, n_boot=300, seed=0)[
        "acc"
    ].to_numpy()
    by_image = stats.bootstrap_distribution(frame, {"acc": ev.accuracy}, n_boot=300, seed=0, group=None)[
        "acc"
    ]
    # a resample of whole patients holds 10 patients of 20 images each: accuracy is a multiple of 1/10
    np.testing.assert_allclose(by_patient * 10, np.round(by_patient * 10), atol=1e-9)
    assert not np.allclose(by_image * 10, np.round(by_image * 10))
    patient_ci = stats.bootstrap_ci(frame, ev.accuracy, n_boot=1000)
    image_ci = stats.bootstrap_ci(frame, ev.accuracy, n_boot=1000, group=None)
    assert patient_ci[1] - patient_ci[0] > 2 * (image_ci[1] - image_ci[0])


def test_bootstrap_skips_undefined_resamples():
    frame = _patients_all_right_or_all_wrong()
    frame["label"] = 1
    frame["probability"] = np.where(frame["patient"].isin(["p0", "p1"]), 0.2, 0.8)
    assert all(math.isnan(bound) for bound in stats.bootstrap_ci(frame, ev.auroc, n_boot=50))  # one class
    low, high = stats.bootstrap_ci(frame, ev.sensitivity, n_boot=200)
    assert 0 <= low < 0.8 < high <= 1


def test_bootstrap_is_fast_enough():
    frame = predictions(n_patients=150, seed=1)
    assert 300 < len(frame) < 700
    start = time.perf_counter()
    stats.bootstrap_ci(frame, ev.accuracy, n_boot=1000)
    assert time.perf_counter() - start < 2.0


def test_bootstrap_rejects_bad_arguments():
    frame = predictions(n_patients=5)
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_ci(frame, ev.accuracy, level=95)
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_ci(frame, ev.accuracy, n_boot=0)
    frame.loc[0, "patient"] = None
    with pytest.raises(ValueError, match="missing"):
        stats.bootstrap_ci(frame, ev.accuracy)


# ----------------------------------------------------------------------------------------------------------
# tables


def test_paper_table1_values_and_order():
    assert list(ev.PAPER_TABLE1) == list(MODEL_SETS)
    assert [(r.label, r.accuracy, r.kappa) for r in ev.PAPER_TABLE1.values()] == [
        ("All Extremity Types (pre-trained)", 0.830, 0.658),
        ("Wrist-Only (pre-trained)", 0.862, 0.717),
        ("Wrist-Only (random initialised)", 0.778, 0.539),
        ("Finger-Only (pre-trained)", 0.766, 0.622),
    ]


def test_table1_layout_and_values(tmp_path):
    wrist = predictions(seed=1)
    finger = predictions(seed=2, body_part="XR_FINGER")
    table = ev.table1({"finger_pretrained": finger, "wrist_pretrained": wrist})
    assert table["model_set"].tolist() == list(MODEL_SETS)
    assert list(table.columns) == list(ev.TABLE1_COLUMNS)
    assert table["title"].tolist() == [r.label for r in ev.PAPER_TABLE1.values()]
    assert table["paper_validation_accuracy"].tolist() == [0.830, 0.862, 0.778, 0.766]
    assert table["paper_cohens_kappa"].tolist() == [0.658, 0.717, 0.539, 0.622]
    wrist_row = table.set_index("model_set").loc["wrist_pretrained"]
    assert wrist_row["validation_accuracy"] == accuracy_score(wrist["label"], wrist["probability"] > 0.5)
    assert wrist_row["cohens_kappa"] == pytest.approx(
        cohen_kappa_score(wrist["label"], wrist["probability"] > 0.5)
    )
    assert wrist_row["n_images"] == len(wrist)
    assert math.isnan(table.set_index("model_set").loc["all_pretrained", "validation_accuracy"])
    # the evaluation notebook writes it without the index; the model set must survive
    table.to_csv(tmp_path / "table1.csv", index=False)
    assert pd.read_csv(tmp_path / "table1.csv")["model_set"].tolist() == list(MODEL_SETS)


def test_table1_rejects_unknown_sets_and_foreign_body_parts():
    with pytest.raises(ValueError, match="unknown model set"):
        ev.table1({"knee_pretrained": predictions()})
    with pytest.raises(ValueError, match="XR_FINGER"):
        ev.table1({"wrist_pretrained": predictions(body_part="XR_FINGER")})


def test_table1_markdown_names_data_and_keeps_order():
    table = ev.table1({"wrist_random": predictions(seed=4)})
    text = ev.table1_markdown(table, "phantom MURA (synthetic, scale 0.1), profile 'mini'")
    lines = text.splitlines()
    assert (
        "| Model Set | Validation Accuracy | Validation Accuracy (paper) | Cohen's Kappa Statistics |" in text
    )
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [r.label for r in ev.PAPER_TABLE1.values()]
    assert "Ours: phantom MURA (synthetic, scale 0.1), profile 'mini'." in lines
    acc = table.set_index("model_set").loc["wrist_random", "validation_accuracy"]
    assert f"| Wrist-Only (random initialised) | {acc:.3f} | 0.778 |" in text
    assert "| All Extremity Types (pre-trained) | n/a | 0.830 | n/a | 0.658 | 0 |" in text


def test_table1_extended_columns_intervals_and_determinism():
    preds = {
        "finger_pretrained": predictions(seed=6, body_part="XR_FINGER"),
        "wrist_pretrained": predictions(seed=5),
    }
    table = ev.table1_extended(preds, n_boot=200, seed=1)
    assert table["model_set"].tolist() == ["wrist_pretrained", "finger_pretrained"]  # the paper's order
    assert table["title"].tolist() == ["Wrist-Only (pre-trained)", "Finger-Only (pre-trained)"]
    metrics = ["accuracy", "kappa", "auroc", "sensitivity", "specificity", "study_accuracy", "study_kappa"]
    for name in metrics:
        assert (table[f"{name}_low"] <= table[name]).all() and (table[name] <= table[f"{name}_high"]).all()
        assert (table[f"{name}_low"] < table[f"{name}_high"]).all()
    wrist = preds["wrist_pretrained"]
    row = table.set_index("model_set").loc["wrist_pretrained"]
    assert row["auroc"] == pytest.approx(roc_auc_score(wrist["label"], wrist["probability"]))
    assert row["sensitivity"] == recall_score(wrist["label"], wrist["probability"] > 0.5)
    studies = ev.study_predictions(wrist)
    assert row["study_accuracy"] == accuracy_score(studies["label"], studies["probability"] > 0.5)
    assert row["study_kappa"] == pytest.approx(
        cohen_kappa_score(studies["label"], studies["probability"] > 0.5)
    )
    assert (
        row["n_studies"] == wrist["study_key"].nunique() and row["n_patients"] == wrist["patient"].nunique()
    )
    assert row["n_images"] == len(wrist)
    pd.testing.assert_frame_equal(table, ev.table1_extended(preds, n_boot=200, seed=1))


def test_per_body_part_matches_subsets():
    frame = pd.concat([predictions(seed=7, body_part="XR_WRIST"), predictions(seed=8, body_part="XR_ELBOW")])
    table = ev.per_body_part(frame)
    assert table["body_part"].tolist() == ["XR_ELBOW", "XR_WRIST", "all"]
    by_part = table.set_index("body_part")
    for part in ("XR_ELBOW", "XR_WRIST"):
        subset = frame[frame["body_part"] == part]
        assert_same_metrics(
            by_part.loc[part].to_dict(), sklearn_metrics(subset["label"].tolist(), subset["probability"])
        )
    assert_same_metrics(
        by_part.loc["all"].to_dict(), sklearn_metrics(frame["label"].tolist(), frame["probability"])
    )


def test_per_abnormality_kind_counts_calls_per_kind():
    predictions = {
        "wrist_pretrained": pd.DataFrame(
            {
                "path": ["a.png", "b.png", "c.png", "d.png", "e.png"],
                "body_part": ["XR_WRIST"] * 5,
                "study_key": ["s1", "s1", "s2", "s3", "s3"],
                "patient": ["p1", "p1", "p2", "p3", "p3"],
                "label": [1, 1, 1, 0, 0],
                "probability": [0.9, 0.2, 0.7, 0.6, 0.1],
            }
        )
    }
    annotations = {
        "a.png": {"kind": "hardware", "lesion": [[[0, 0], [1, 0], [1, 1]]]},
        "b.png": {"kind": "fracture", "lesion": [[[0, 0], [1, 0], [1, 1]]]},
        "c.png": {"kind": "hardware", "lesion": [[[0, 0], [1, 0], [1, 1]]]},
        "d.png": {"kind": "normal", "lesion": []},
        "e.png": {"kind": "normal", "lesion": []},
    }
    table = ev.per_abnormality_kind(predictions, annotations).set_index(["label", "kind"])
    assert table.loc[(1, "hardware"), "n"] == 2 and table.loc[(1, "hardware"), "called_abnormal"] == 1.0
    assert table.loc[(1, "fracture"), "called_abnormal"] == 0.0
    assert table.loc[(0, "normal"), "called_abnormal"] == 0.5
    assert table.loc[(0, "normal"), "mean_probability"] == pytest.approx(0.35)
    with pytest.raises(ValueError, match="no phantom annotation"):
        ev.per_abnormality_kind(predictions, {"a.png": annotations["a.png"]})


def test_paired_difference_matches_images_by_path_and_resamples_patients():
    """A minus B on the images both models saw (matched by path, not row order), finite pairs only, optionally
    restricted to some paths; the interval is the patient bootstrap of the per-image differences."""
    a = pd.DataFrame(
        {
            "model_set": "A",
            "path": ["p1", "p2", "p3", "p4", "p5"],
            "patient": ["x", "x", "y", "z", "z"],
            "v": [1.0, 2.0, 4.0, np.nan, 10.0],
        }
    )
    b = pd.DataFrame(  # another row order, one image only B saw (p9), one only A saw (p5)
        {
            "model_set": "B",
            "path": ["p4", "p3", "p9", "p2", "p1"],
            "patient": ["z", "y", "w", "x", "x"],
            "v": [0.0, 1.0, 5.0, 1.5, 0.0],
        }  # fmt: skip
    )
    per_image = pd.concat([a, b], ignore_index=True)
    out = stats.paired_difference(per_image, "v", "A", "B", n_boot=200, seed=3)
    # pairs: p1 (1 - 0), p2 (2 - 1.5), p3 (4 - 1); p4 has a nan, p5 and p9 no partner
    assert out["a"] == pytest.approx(7 / 3) and out["b"] == pytest.approx(2.5 / 3)
    assert out["diff"] == pytest.approx((1.0 + 0.5 + 3.0) / 3)
    assert (out["n_images"], out["n_patients"]) == (3, 2)
    reversed_ = stats.paired_difference(per_image, "v", "B", "A", n_boot=200, seed=3)
    assert reversed_["diff"] == pytest.approx(-out["diff"])  # the sign says which model is ahead
    only = stats.paired_difference(per_image, "v", "A", "B", paths=["p3", "p4", "p9"], n_boot=200, seed=3)
    assert (only["diff"], only["n_images"], only["n_patients"]) == (pytest.approx(3.0), 1, 1)
    none = stats.paired_difference(per_image, "v", "A", "B", paths=["p9"], n_boot=200)
    assert math.isnan(none["a"]) and math.isnan(none["diff"]) and none["n_images"] == 0


def test_table1_markdown_is_exactly_the_papers_layout():
    table = ev.table1({"wrist_random": predictions(seed=4)})
    assert table["validation_accuracy"].dtype == float and table["cohens_kappa"].dtype == float
    row = table.set_index("model_set").loc["wrist_random"]
    acc, kappa, n = row["validation_accuracy"], row["cohens_kappa"], row["n_images"]
    expected = (
        "Table 1: Performance metrics for the different model sets (image level, validation images of each "
        "model set's body parts, probability > 0.5 = abnormal)\n"
        "\n"
        "| Model Set | Validation Accuracy | Validation Accuracy (paper) | Cohen's Kappa Statistics "
        "| Cohen's Kappa Statistics (paper) | Validation Images |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n"
        "| All Extremity Types (pre-trained) | n/a | 0.830 | n/a | 0.658 | 0 |\n"
        "| Wrist-Only (pre-trained) | n/a | 0.862 | n/a | 0.717 | 0 |\n"
        f"| Wrist-Only (random initialised) | {acc:.3f} | 0.778 | {kappa:.3f} | 0.539 | {n} |\n"
        "| Finger-Only (pre-trained) | n/a | 0.766 | n/a | 0.622 | 0 |\n"
        "\n"
        "Ours: phantom MURA, profile 'mini'.\n"
        "Paper: MURA v1.1 (real), DenseNet-169, ImageNet pre-training, 320x320, 32 epochs (its Table 1).\n"
    )
    assert ev.table1_markdown(table, "phantom MURA, profile 'mini'") == expected


def test_per_body_part_passes_the_threshold_on():
    frame = predictions(seed=7)
    strict = ev.per_body_part(frame, threshold=0.8).set_index("body_part")
    expected = ev.image_metrics(frame["label"], frame["probability"], threshold=0.8)
    assert strict.loc["all", "accuracy"] == pytest.approx(expected["accuracy"])
    assert (
        strict.loc["all", "accuracy"] != ev.per_body_part(frame).set_index("body_part").loc["all", "accuracy"]
    )


def test_per_abnormality_kind_is_one_sorted_row_per_label_kind_and_visibility():
    table = pd.DataFrame(
        {
            "path": ["a", "b", "c", "d", "e", "f"],
            "body_part": ["XR_WRIST"] * 6,
            "study_key": ["s1", "s1", "s2", "s3", "s3", "s4"],
            "patient": ["p1", "p1", "p2", "p3", "p3", "p4"],
            "label": [1, 1, 1, 0, 0, 1],
            "probability": [0.5, 0.9, 0.7, 0.6, 0.1, 0.95],  # 0.5 is not above the threshold
        }
    )
    lesion = [[[0, 0], [1, 0], [1, 1]]]
    annotations = {
        "a": {"kind": "fracture", "lesion": lesion},
        "b": {"kind": "fracture", "lesion": []},  # its lesion is hidden in this view
        "c": {"kind": "fracture", "lesion": lesion},
        "d": {"kind": "normal", "lesion": []},
        "e": {"kind": "normal"},
        "f": {"kind": "hardware", "lesion": lesion},
    }
    out = ev.per_abnormality_kind({"wrist_pretrained": table}, annotations, threshold=0.5)
    expected = pd.DataFrame(
        {
            "model_set": ["wrist_pretrained"] * 4,
            "label": [0, 1, 1, 1],
            "kind": ["normal", "fracture", "fracture", "hardware"],
            "lesion_visible": [False, False, True, True],
            "n": [2, 1, 2, 1],
            "called_abnormal": [0.5, 1.0, 0.5, 1.0],
            "mean_probability": [0.35, 0.9, 0.6, 0.95],
        }
    )
    pd.testing.assert_frame_equal(out, expected)
    at_09 = ev.per_abnormality_kind({"wrist_pretrained": table}, annotations, threshold=0.9)
    assert at_09["called_abnormal"].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_paired_difference_interval_is_the_patient_bootstrap_of_the_differences():
    rng = np.random.default_rng(5)
    n = 40
    per_image = pd.DataFrame(
        {
            "model_set": ["A"] * n + ["B"] * n,
            "path": [f"p{i}" for i in range(n)] * 2,
            "patient": [f"x{i // 2}" for i in range(n)] * 2,
            "v": np.concatenate([rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n)]),
        }
    )
    out = stats.paired_difference(per_image, "v", "A", "B", n_boot=300, seed=4)
    diffs = per_image["v"].to_numpy()[:n] - per_image["v"].to_numpy()[n:]
    expected = stats.bootstrap_mean(diffs, per_image["patient"].to_numpy()[:n], 300, 4)
    assert (out["diff"], out["diff_low"], out["diff_high"]) == pytest.approx(expected)
    assert (
        stats.paired_difference(per_image, "v", "A", "B", n_boot=300, seed=5)["diff_low"] != out["diff_low"]
    )
    assert stats.paired_difference(per_image, "v", "A", "B") == stats.paired_difference(
        per_image, "v", "A", "B", n_boot=1000, seed=0
    )


def test_table1_extended_intervals_are_patient_bootstraps_with_the_given_draws():
    frame = predictions(n_patients=12, seed=9)
    row = ev.table1_extended({"wrist_pretrained": frame}, n_boot=150, seed=3).iloc[0]
    for name, metric in (("accuracy", ev.accuracy), ("sensitivity", ev.sensitivity)):
        expected = stats.bootstrap_ci(frame, metric, n_boot=150, seed=3, level=0.95, group="patient")
        assert (row[f"{name}_low"], row[f"{name}_high"]) == pytest.approx(expected)
    studies = ev.study_predictions(frame)
    expected = stats.bootstrap_ci(studies, ev.cohen_kappa, n_boot=150, seed=3)
    assert (row["study_kappa_low"], row["study_kappa_high"]) == pytest.approx(expected)
    pd.testing.assert_frame_equal(
        ev.table1_extended({"wrist_pretrained": frame}),
        ev.table1_extended({"wrist_pretrained": frame}, 1000, 0),
    )


def test_check_predictions_says_which_file_only_when_it_knows_it(tmp_path):
    frame = predictions(n_patients=3)
    bad = frame.assign(probability=["high"] + frame["probability"].tolist()[1:])
    with pytest.raises(ValueError, match="probability must be a number") as caught:
        ev.check_predictions(bad)
    assert type(caught.value) is ValueError  # no file to name: a plain ValueError
    with pytest.raises(DataError, match="probability must be a number"):
        ev.check_predictions(bad, tmp_path / "p.csv")


def test_study_predictions_keep_the_studies_first_seen_order():
    frame = predictions(n_patients=6, seed=2).iloc[::-1].reset_index(drop=True)  # study keys descending
    studies = ev.study_predictions(frame)
    assert studies["study_key"].tolist() == list(dict.fromkeys(frame["study_key"]))
    assert studies["study_key"].tolist() != sorted(studies["study_key"])


def test_a_class_that_is_absent_gives_nan_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the mean of no values would warn
        assert math.isnan(ev.specificity([1, 1], [0.2, 0.9]))
        assert math.isnan(ev.sensitivity([0, 0], [0.2, 0.9]))
        assert math.isnan(ev.auroc([0, 0], [0.2, 0.9]))
        assert math.isnan(ev.cohen_kappa([1, 1], [0.7, 0.9]))  # chance agreement 1: kappa undefined


def test_metrics_read_an_object_column_as_numbers():
    y, prob = np.array([0, 1, 1, 0], dtype=object), np.array([0.2, 0.9, 0.4, 0.6], dtype=object)
    assert ev.accuracy(y, prob) == 0.5 and ev.auroc(y, prob) == 0.75
