"""``densenet-interp explain`` through ``cli.main``: good and bad images in one call, bad models, exit codes."""

from __future__ import annotations

import zipfile

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from densenet_interp.cli import main
from densenet_interp.commands.explain import label_from_path, unique_stems
from densenet_interp.explain.engine import STAGES


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_model):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    tiny_model(64).save(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, constant_png):
    """Good images in several encodings and bad files, by name."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = {name: folder / f"{name}.png" for name in ("grey", "sixteen", "rgba", "palette", "one_pixel")}
    Image.fromarray(rng.integers(0, 256, (90, 70), dtype=np.uint8)).save(paths["grey"])
    Image.fromarray(rng.integers(0, 65536, (50, 60)).astype(np.uint16)).save(paths["sixteen"])
    Image.fromarray(rng.integers(0, 256, (40, 40, 4), dtype=np.uint8), "RGBA").save(paths["rgba"])
    Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).convert("P").save(paths["palette"])
    Image.new("L", (1, 1), 7).save(paths["one_pixel"])
    paths["text"] = folder / "notes.png"
    paths["text"].write_text("this is not an image\n")
    paths["truncated"] = folder / "truncated.png"
    data = paths["grey"].read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["huge"] = folder / "huge.png"
    constant_png(paths["huge"], 20000, 20000)  # declares 400 megapixels, costs bytes
    paths["missing"] = folder / "missing.png"
    return paths


GOOD = ("grey", "sixteen", "rgba", "palette", "one_pixel")
BAD = {
    "text": "not an image file",
    "truncated": "cannot decode image",
    "huge": "400.0 megapixels, over the limit",
    "missing": "file not found",
}


def test_bad_images_get_one_line_each_and_the_others_are_explained(model_file, inputs, tmp_path, capsys):
    order = ["grey", "text", "sixteen", "truncated", "rgba", "huge", "palette", "missing", "one_pixel"]
    out = tmp_path / "out"
    status = main(
        ["-q", "explain", *(str(inputs[n]) for n in order), "--model", str(model_file), "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert status == 1
    errors = captured.err.strip().splitlines()
    assert len(errors) == len(BAD) and "Traceback" not in captured.err  # -q: the problems, no progress lines
    for name, problem in BAD.items():
        line = next(e for e in errors if e.startswith(f"{inputs[name]}: "))
        assert problem in line, line
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(f"{name}.png" for name in GOOD), "predictions.csv"]
    )
    for name in GOOD:
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    assert "explained 5 of 9 image(s)" in captured.out
    table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert table["path"].tolist() == [str(inputs[n]) for n in order]  # every input, in order
    for name, problem in BAD.items():
        row = table[table["path"] == str(inputs[name])].iloc[0]
        assert problem in row["problem"] and row["probability"] == ""
    good = table[table["problem"] == ""]
    assert len(good) == len(GOOD) and good["probability"].astype(float).between(0, 1).all()
    assert set(good["prediction"]) <= {"normal", "abnormal"} and set(table["model"]) == {str(model_file)}
    assert table["data"].str.contains("unknown training data").all()  # this model has no card.json


def test_all_good_images_exit_0_and_arrays_hold_the_model_input(model_file, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(inputs["grey"]), str(inputs["rgba"]), "--model", str(model_file), "--out", str(out)]
    assert (
        main(["-q", "explain", *args, "--save-arrays", "--top-k", "4", "--rank", "max", "--crop-frame"]) == 0
    )
    assert capsys.readouterr().err == ""
    with np.load(out / "grey.npz", allow_pickle=False) as arrays:
        grey = np.asarray(Image.open(inputs["grey"]).resize((64, 64), Image.Resampling.BILINEAR))
        np.testing.assert_array_equal(
            arrays["input"], np.repeat(grey[..., None].astype(np.float32), 3, axis=2)
        )
        assert arrays["cam"].shape == (64, 64) and 0.0 <= float(arrays["probability"]) <= 1.0
        for stage in STAGES:
            assert arrays[stage].shape[-1] == 4 and arrays[f"{stage}_channels"].shape == (4,)
        assert int(arrays["label"]) == -1 and str(arrays["source"]) == str(inputs["grey"])
    # the same image alone gives the same probability (batching does not change results)
    with np.load(out / "grey.npz") as arrays:
        batched = float(arrays["probability"])
    single = tmp_path / "single"
    assert (
        main(
            [
                "explain",
                str(inputs["grey"]),
                "--model",
                str(model_file),
                "--out",
                str(single),
                "--save-arrays",
            ]
        )
        == 0
    )
    with np.load(single / "grey.npz") as arrays:
        assert float(arrays["probability"]) == pytest.approx(batched, abs=1e-6)


def _assert_bad_model(model_path, inputs, tmp_path, capsys, problem: str) -> None:
    out = tmp_path / "never"
    status = main(["explain", str(inputs["grey"]), "--model", str(model_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and not out.exists()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"densenet-interp explain: error: {model_path}: ") and problem in err, err


def test_missing_model(inputs, tmp_path, capsys):
    _assert_bad_model(tmp_path / "nowhere.keras", inputs, tmp_path, capsys, "model file not found")


def test_model_file_that_is_not_a_model(inputs, tmp_path, capsys):
    _assert_bad_model(inputs["grey"], inputs, tmp_path, capsys, "not a .keras model")
    corrupt = tmp_path / "corrupt.keras"
    with zipfile.ZipFile(corrupt, "w") as archive:
        archive.writestr("config.json", "{not json")
    _assert_bad_model(corrupt, inputs, tmp_path, capsys, "could not load the model")


def test_model_without_the_layers_the_explanation_needs(inputs, tmp_path, capsys):
    plain = tmp_path / "plain.keras"
    image = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="conv")(image))
    keras.Model(image, keras.layers.Dense(1, activation="sigmoid", name="predictions")(pooled)).save(plain)
    _assert_bad_model(plain, inputs, tmp_path, capsys, "lacks the layers")


def test_top_k_must_be_positive(model_file, inputs, tmp_path, capsys):
    args = [str(inputs["grey"]), "--model", str(model_file), "--out", str(tmp_path), "--top-k", "0"]
    assert main(["explain", *args]) == 2
    assert "--top-k must be at least 1, got 0" in capsys.readouterr().err


def test_unwritable_output_is_one_line_per_image(model_file, inputs, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    status = main(["explain", str(inputs["grey"]), "--model", str(model_file), "--out", str(blocker)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--out is a file" in err and "Traceback" not in err
    out = tmp_path / "out"
    (out / "grey.png").mkdir(
        parents=True
    )  # the figure's name is taken by a folder: that image cannot be written
    args = [str(inputs["grey"]), str(inputs["rgba"]), "--model", str(model_file), "--out", str(out)]
    status = main(["-q", "explain", *args, "--overwrite"])
    err = capsys.readouterr().err
    assert (
        status == 1 and err.count("\n") == 1 and "cannot write the outputs" in err and "Traceback" not in err
    )
    table = pd.read_csv(out / "predictions.csv", keep_default_na=False).set_index("output")
    assert "cannot write the outputs" in table.loc["grey", "problem"] and table.loc["rgba", "problem"] == ""


def test_output_stems_are_unique_and_labels_come_from_mura_paths():
    paths = [
        "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/image1.png",
        "MURA-v1.1/valid/XR_WRIST/patient11186/study1_positive/image1.png",
        "MURA-v1.1/valid/XR_WRIST/patient11186/study2_negative/image1.png",
        "/data/other/scan.png",
        "/data/other/scan.png",
    ]
    assert unique_stems(paths) == [
        "patient11185_study1_positive_image1",
        "patient11186_study1_positive_image1",
        "study2_negative_image1",
        "scan",
        "scan-2",
    ]
    assert [label_from_path(p) for p in paths] == [1, 1, 0, None, None]


def test_long_lists_are_explained_in_batches(model_file, inputs, tmp_path, capsys, monkeypatch):
    from densenet_interp.commands import explain as explain_cli

    monkeypatch.setattr(explain_cli, "BATCH_SIZE", 2)
    names = ["grey", "sixteen", "text", "rgba", "palette"]  # batches: (grey, sixteen), (rgba, palette)
    out = tmp_path / "out"
    status = main(
        ["-q", "explain", *(str(inputs[n]) for n in names), "--model", str(model_file), "--out", str(out)]
    )
    assert status == 1 and capsys.readouterr().err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "grey.png", "palette.png", "predictions.csv", "rgba.png", "sixteen.png"
    ]  # fmt: skip


def test_method_picks_the_map_of_panel_b(model_file, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(inputs["grey"]), "--model", str(model_file), "--out", str(out), "--save-arrays"]
    assert main(["explain", *args, "--method", "gradcam++"]) == 0
    with np.load(out / "grey.npz", allow_pickle=False) as arrays:
        assert str(arrays["method"]) == "gradcam++"
        assert arrays["saliency"].shape == arrays["cam"].shape == (64, 64) and (arrays["saliency"] >= 0).all()
    assert main(["explain", *args, "--overwrite"]) == 0  # the default: the CAM, and no extra arrays
    with np.load(out / "grey.npz", allow_pickle=False) as arrays:
        assert "method" not in arrays and "saliency" not in arrays
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", *args, "--method", "nope"])
    assert exit_info.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_an_input_is_never_replaced_by_its_own_output(model_file, tmp_path, capsys):
    """`explain d/scan.png --out d` would write d/scan.png over the input: refused, the input byte-identical."""
    folder = tmp_path / "d"
    folder.mkdir()
    scan = folder / "scan.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 40), dtype=np.uint8)).save(scan)
    before = scan.read_bytes()
    for extra in ([], ["--overwrite"]):
        status = main(["explain", str(scan), "--model", str(model_file), "--out", str(folder), *extra])
        assert status == 1
        assert "would replace an input file" in capsys.readouterr().err
        assert scan.read_bytes() == before


def test_an_earlier_output_is_replaced_only_with_overwrite(model_file, inputs, tmp_path, capsys):
    """A second run with the same stem (here: another folder's image of the same name) does not silently
    replace the first run's figure; --overwrite does, on purpose."""
    out = tmp_path / "out"
    assert main(["explain", str(inputs["grey"]), "--model", str(model_file), "--out", str(out)]) == 0
    first = (out / "grey.png").read_bytes()
    other = tmp_path / "elsewhere" / "grey.png"
    other.parent.mkdir()
    Image.fromarray(np.zeros((30, 30), dtype=np.uint8)).save(other)
    table = (out / "predictions.csv").read_bytes()
    capsys.readouterr()
    # the earlier run's table is there: the whole run is refused before anything is written
    assert main(["explain", str(other), "--model", str(model_file), "--out", str(out)]) == 2
    assert "predictions.csv exists (an earlier run's?); pass --overwrite" in capsys.readouterr().err
    assert (out / "grey.png").read_bytes() == first and (out / "predictions.csv").read_bytes() == table
    (out / "predictions.csv").unlink()  # without the table, the figure itself is still protected
    assert main(["explain", str(other), "--model", str(model_file), "--out", str(out)]) == 1
    assert "exists (an earlier run's?); pass --overwrite" in capsys.readouterr().err
    assert (out / "grey.png").read_bytes() == first
    assert main(["explain", str(other), "--model", str(model_file), "--out", str(out), "--overwrite"]) == 0
    assert (out / "grey.png").read_bytes() != first


def test_folders_are_searched_and_their_tree_mirrored_with_a_predictions_table(model_file, tmp_path, capsys):
    """`explain FOLDER`: every radiograph below it (PNG, JPEG, DICOM with or without suffix), hidden files and
    non-images skipped, outputs at the same place in the tree; --format picks the figure files."""
    import json

    from pydicom.data import get_testdata_file

    rng = np.random.default_rng(2)
    root = tmp_path / "MURA-v1.1" / "valid" / "XR_WRIST"
    study = root / "patient11185" / "study1_positive"
    other = root / "patient11186" / "study1_negative"
    for folder in (study, other, root / ".cache"):
        folder.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (60, 50), dtype=np.uint8)).save(study / "image1.png")
    Image.fromarray(rng.integers(0, 256, (60, 50), dtype=np.uint8)).save(other / "image1.jpg")
    (other / "scan").write_bytes(open(get_testdata_file("CT_small.dcm"), "rb").read())  # DICOM, no suffix
    (other / "notes.txt").write_text("not an image")
    (other / "README").write_text("not DICOM either")
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8)).save(root / ".cache" / "hidden.png")
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8)).save(other / "._image1.png")
    (model_file.parent / "card.json").write_text(
        json.dumps({"model_set": "wrist_pretrained", "data_label": "X"})
    )
    out = tmp_path / "out"
    try:
        status = main(
            ["explain", str(root), "--model", str(model_file), "--out", str(out), "--format", "png,svg"]
        )
    finally:
        (model_file.parent / "card.json").unlink()
    captured = capsys.readouterr()
    assert status == 0, captured.err
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert made == sorted(
        [
            "XR_WRIST/patient11185/study1_positive/image1.png",
            "XR_WRIST/patient11185/study1_positive/image1.svg",
            "XR_WRIST/patient11186/study1_negative/image1.png",
            "XR_WRIST/patient11186/study1_negative/image1.svg",
            "XR_WRIST/patient11186/study1_negative/scan.png",
            "XR_WRIST/patient11186/study1_negative/scan.svg",
            "predictions.csv",
        ]
    )
    table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert table["output"].tolist() == [
        "XR_WRIST/patient11185/study1_positive/image1",
        "XR_WRIST/patient11186/study1_negative/image1",
        "XR_WRIST/patient11186/study1_negative/scan",
    ]
    assert table["label"].tolist() == [1, 0, 0]  # from the MURA path
    assert set(table["data"]) == {"model wrist_pretrained trained on X"}
    with Image.open(out / "XR_WRIST/patient11185/study1_positive/image1.png") as image:
        assert image.text["Description"] == "Data: model wrist_pretrained trained on X"
    assert "explained 3 of 3 image(s)" in captured.out
    assert captured.err.count("p(abnormal) = ") == 3  # progress: one line per image, on stderr (logging)


def test_quiet_verbose_format_and_folder_errors_are_one_line(model_file, inputs, tmp_path, capsys):
    base = ["--model", str(model_file), "--out", str(tmp_path / "o")]
    assert main(["-q", "explain", str(inputs["grey"]), *base]) == 0
    assert capsys.readouterr().err == ""
    assert main(["explain", str(inputs["grey"]), *base, "--overwrite"]) == 0
    assert "p(abnormal) = " in capsys.readouterr().err  # without -q: a progress line per image
    for bad in ("jpeg", "png,", "", "png;pdf"):
        assert main(["explain", str(inputs["grey"]), *base, "--overwrite", "--format", bad]) == (
            2 if bad != "png," else 0
        )
        err = capsys.readouterr().err
        assert "Traceback" not in err and (bad == "png," or "--format takes" in err)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["explain", str(empty), "--model", str(model_file), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[0].startswith(f"{empty}: no radiographs in this folder")
        and "no radiographs to explain" in err[-1]
    )
    (tmp_path / "afile").write_text("x")
    assert (
        main(["explain", str(inputs["grey"]), "--model", str(model_file), "--out", str(tmp_path / "afile")])
        == 2
    )
    assert "--out is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["-q", "-v", "explain", str(inputs["grey"]), *base])  # one or the other
