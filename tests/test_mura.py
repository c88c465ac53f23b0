"""Tests for densenet_interp.data.mura: the real MURA v1.1 index reproduces the paper's Table 2 in every cell, copies
with other line endings or a header read the same, and every kind of bad input ends in one line naming the file
(and line) through the command line."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from densenet_interp import cli
from densenet_interp.data import mura

# The real MURA v1.1 index files live in the project's shared folder beside the checkout (../shared), or in a
# shared/ folder inside it; MURA_INDEX_DIR overrides both.
_ROOT = Path(__file__).resolve().parents[1]
REAL_INDEX = Path(
    os.environ.get(
        "MURA_INDEX_DIR",
        next(
            (
                p
                for p in (_ROOT.parent / "shared" / "mura-v1.1-index", _ROOT / "shared" / "mura-v1.1-index")
                if p.is_dir()
            ),
            _ROOT.parent / "shared" / "mura-v1.1-index",
        ),
    )
)

# The paper's Table 2 (appendix A.1), row by row: train normal, train abnormal, valid normal, valid abnormal, total
PAPER_TABLE2 = {
    "Elbow": (1094, 660, 92, 66, 1912),
    "Finger": (1280, 655, 92, 83, 2110),
    "Hand": (1497, 521, 101, 66, 2185),
    "Humerus": (321, 271, 68, 67, 727),
    "Forearm": (590, 287, 69, 64, 1010),
    "Shoulder": (1364, 1457, 99, 95, 3015),
    "Wrist": (2134, 1326, 140, 97, 3697),
    "Total No. of Studies": (8280, 5177, 661, 538, 14656),
}
# The index README: images per study -> number of studies, and images per body part (train/valid x normal/abn.)
README_IMAGES_PER_STUDY = {1: 1232, 2: 4145, 3: 6983, 4: 2022, 5: 227, 6: 28, 7: 14, 8: 3, 10: 1, 11: 1}
README_IMAGE_COUNTS = {
    "Elbow": (2925, 2006, 235, 230),
    "Finger": (3138, 1968, 214, 247),
    "Forearm": (1164, 661, 150, 151),
    "Hand": (4059, 1484, 271, 189),
    "Humerus": (673, 599, 148, 140),
    "Shoulder": (4211, 4168, 285, 278),
    "Wrist": (5765, 3987, 364, 295),
    "Total No. of Images": (21935, 14873, 1667, 1530),
}

needs_real_index = pytest.mark.skipif(not REAL_INDEX.is_dir(), reason="real MURA index CSVs not available")


# ----------------------------------------------------------------------------------------------------------
# helpers


def copy_real_index(parent: Path, transform=None) -> Path:
    """Copy the four real CSVs into ``parent/MURA-v1.1/``, optionally rewriting each file's text."""
    root = parent / "MURA-v1.1"
    root.mkdir(parents=True)
    for name in mura.CSV_NAMES:
        if transform is None:
            shutil.copyfile(REAL_INDEX / name, root / name)
        else:
            text = (REAL_INDEX / name).read_text()
            (root / name).write_bytes(transform(name, text).encode("utf-8"))
    return root


def edit_line(csv_path: Path, line: int, new_text: str | None) -> str:
    """Replace (or, with None, delete) 1-based ``line`` of an LF file; return the old line."""
    lines = csv_path.read_text().split("\n")
    old = lines[line - 1]
    if new_text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new_text
    csv_path.write_text("\n".join(lines))
    return old


SMALL = [
    ("train", "XR_WRIST", "patient00001", "study1_positive", 2),
    ("train", "XR_HAND", "patient00001", "study1_negative", 1),
    ("valid", "XR_WRIST", "patient00002", "study1_negative", 3),
]


def run_stats(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["stats", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_from_stdout(out: str) -> dict[str, tuple[int, ...]]:
    cells = {}
    for name in PAPER_TABLE2:
        (line,) = [row for row in out.splitlines() if row.startswith(name + " ")]
        cells[name] = tuple(int(v) for v in re.findall(r"\d+", line[len(name) :]))
    return cells


def assert_one_error_line(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ----------------------------------------------------------------------------------------------------------
# the real index: Table 2, variants of the CSV format, counts, speed


def _crlf(name, text):
    return text.replace("\n", "\r\n")


def _no_final_newline(name, text):
    return text.rstrip("\n")


def _header(name, text):
    return ("Img_Path,Label\n" if "studies" in name else "path\n") + text


def _bom_blank_crlf(name, text):
    return "\ufeff" + "\r\n\r\n".join(text.rstrip("\n").split("\n")) + "\r\n\r\n"


VARIANTS = {"lf": None, "crlf": _crlf, "no_final_newline": _no_final_newline, "header": _header}
VARIANTS["bom_blank_lines_crlf"] = _bom_blank_crlf


@needs_real_index
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("give_parent", [False, True])
def test_cli_stats_reproduces_paper_table2(tmp_path, capsys, variant, give_parent):
    root = copy_real_index(tmp_path, VARIANTS[variant])
    code, out, err = run_stats(capsys, tmp_path if give_parent else root)
    assert code == 0 and err == ""
    assert table_from_stdout(out) == PAPER_TABLE2


@needs_real_index
def test_table2_function_matches_paper_and_variants_fingerprint_alike(tmp_path):
    expected = pd.DataFrame.from_dict(PAPER_TABLE2, orient="index", columns=list(mura.TABLE2_COLUMNS))
    prints = set()
    for variant, transform in VARIANTS.items():
        index = mura.read_mura(copy_real_index(tmp_path / variant, transform))
        table = mura.table2(index)
        assert list(table.index) == list(PAPER_TABLE2)
        pd.testing.assert_frame_equal(table, expected, check_names=False)
        prints.add(mura.fingerprint(index))
    assert len(prints) == 1


@needs_real_index
def test_real_index_tables_and_speed(tmp_path):
    root = copy_real_index(tmp_path)
    start = time.perf_counter()
    index = mura.read_mura(root)
    seconds = time.perf_counter() - start
    assert seconds < 2.0, f"reading the real index took {seconds:.2f} s"
    assert len(index.images) == 36808 + 3197 and len(index.studies) == 14656
    assert index.images["study_key"].isin(index.studies["study_key"]).all()
    assert index.studies["study_key"].is_unique
    assert mura.images_per_study(index).to_dict() == README_IMAGES_PER_STUDY
    counts = mura.image_counts(index)
    assert {name: tuple(row[:4]) for name, row in counts.iterrows()} == README_IMAGE_COUNTS
    assert (counts["total"] == counts.iloc[:, :4].sum(axis=1)).all()
    # the same patient and study number under two body parts are two studies
    first = index.studies.groupby(["split", "patient", "study"])["body_part"].nunique()
    assert (first > 1).any()
    wrist_valid = mura.select_images(index, "valid", ["XR_WRIST"])
    assert len(wrist_valid) == 364 + 295 and set(wrist_valid["body_part"]) == {"XR_WRIST"}
    assert wrist_valid.index.equals(pd.RangeIndex(len(wrist_valid)))


@needs_real_index
def test_image_rows_carry_study_label_and_paths(tmp_path):
    index = mura.read_mura(copy_real_index(tmp_path))
    row = index.images.iloc[0]
    assert row["path"] == "MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/image1.png"
    assert row["abs_path"] == str(tmp_path.resolve() / "MURA-v1.1" / row["path"].removeprefix("MURA-v1.1/"))
    assert (row["split"], row["body_part"], row["patient"], row["study"]) == (
        "train",
        "XR_SHOULDER",
        "patient00001",
        "study1",
    )
    assert row["study_key"] == "train/XR_SHOULDER/patient00001/study1"
    assert row["label"] == 1 and row["view_index"] == 1
    suffix_label = index.images["path"].str.contains("_positive/").astype(int)
    assert (index.images["label"] == suffix_label).all()
    assert index.root == (tmp_path / "MURA-v1.1").resolve()


def test_table2_text_and_markdown_layout(tmp_path, write_small_mura):
    index = mura.read_mura(write_small_mura(tmp_path, SMALL, images=False))
    table = mura.table2(index)
    assert table.loc["Wrist"].tolist() == [0, 1, 1, 0, 2] and table.loc["Hand"].tolist() == [1, 0, 0, 0, 1]
    assert table.loc["Total No. of Studies"].tolist() == [1, 1, 1, 0, 3]
    text = mura.format_table2(table).splitlines()
    assert text[0].split() == ["Study", "Train", "Validation", "Total"]
    assert text[1].split() == ["Normal", "Abnormal", "Normal", "Abnormal"]
    assert [line.split()[0] for line in text if line[:1].isalpha()][1:] == [
        "Elbow",
        "Finger",
        "Hand",
        "Humerus",
        "Forearm",
        "Shoulder",
        "Wrist",
        "Total",
    ]
    markdown = mura.table2_markdown(table).splitlines()
    assert (
        markdown[0]
        == "| Study | Train Normal | Train Abnormal | Validation Normal | Validation Abnormal | Total |"
    )
    assert markdown[-1] == "| Total No. of Studies | 1 | 1 | 1 | 0 | 3 |"


def test_cli_writes_csv(tmp_path, capsys, write_small_mura):
    root = write_small_mura(tmp_path, SMALL, images=False)
    out_csv = tmp_path / "out" / "table2.csv"
    code, _, err = run_stats(capsys, root, "--csv", out_csv)
    assert code == 0 and err == ""
    written = pd.read_csv(out_csv, index_col=0)
    pd.testing.assert_frame_equal(written, mura.table2(mura.read_mura(root)), check_dtype=False)
    assert [p.name for p in out_csv.parent.iterdir()] == ["table2.csv"]  # no temporary file left


def test_macos_resource_fork_rows_are_ignored(tmp_path, write_small_mura):
    root = write_small_mura(tmp_path, SMALL, images=False)
    with open(root / "train_image_paths.csv", "a") as f:
        f.write("MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/._image1.png\n")
    assert len(mura.read_mura(root).images) == 6


def test_fingerprint_follows_content_and_optionally_files(tmp_path, write_small_mura):
    root = write_small_mura(tmp_path / "a", SMALL)
    other = write_small_mura(
        tmp_path / "b", SMALL[:2] + [("valid", "XR_WRIST", "patient00002", "study1_negative", 2)]
    )
    index = mura.read_mura(root)
    assert mura.fingerprint(index) != mura.fingerprint(mura.read_mura(other))
    assert re.fullmatch(r"[0-9a-f]{16}", mura.fingerprint(index))
    with_files = mura.fingerprint(index, files=True)
    png = Path(index.images["abs_path"].iloc[0])
    Image.new("L", (3, 3), 9).save(png)
    stat = png.stat()
    os.utime(png, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert mura.fingerprint(index) == mura.fingerprint(mura.read_mura(root))
    assert mura.fingerprint(index, files=True) != with_files


def test_select_images_rejects_unknown_names(tmp_path, write_small_mura):
    index = mura.read_mura(write_small_mura(tmp_path, SMALL, images=False))
    assert len(mura.select_images(index, "train", "XR_WRIST")) == 2
    with pytest.raises(ValueError, match="unknown split"):
        mura.select_images(index, "test", ["XR_WRIST"])
    with pytest.raises(ValueError, match="XR_KNEE"):
        mura.select_images(index, "train", ["XR_KNEE"])
    with pytest.raises(mura.DataError, match="no valid images of XR_HAND"):
        mura.select_images(index, "valid", ["XR_HAND"])


# ----------------------------------------------------------------------------------------------------------
# check_files


def test_check_files_all_good(tmp_path, capsys, write_small_mura):
    root = write_small_mura(tmp_path, SMALL)
    assert mura.check_files(mura.read_mura(root), workers=2) == []
    code, out, err = run_stats(capsys, root, "--check-files")
    assert code == 0 and err == "" and "all 6 images decode" in out


def test_check_files_reports_garbage_image_in_one_line(tmp_path, capsys, write_small_mura):
    root = write_small_mura(tmp_path, SMALL)
    garbage = root / "valid/XR_WRIST/patient00002/study1_negative/image2.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code, out, err = run_stats(capsys, root, "--check-files")
    assert_one_error_line(code, err, str(garbage))
    assert code == 1 and "1 of 6 images" in out
    assert any(line.startswith("Total No. of Studies") for line in out.splitlines())  # table still printed


def test_check_files_reports_missing_and_undecodable(tmp_path, write_small_mura):
    root = write_small_mura(tmp_path, SMALL)
    missing = root / "train/XR_HAND/patient00001/study1_negative/image1.png"
    missing.unlink()
    truncated = root / "train/XR_WRIST/patient00001/study1_positive/image2.png"
    truncated.write_bytes(truncated.read_bytes()[:40])
    problems = mura.check_files(mura.read_mura(root))
    assert [path for path, _ in problems] == [str(truncated.resolve()), str(missing.resolve())]
    assert "file not found" in problems[1][1]


# ----------------------------------------------------------------------------------------------------------
# bad inputs through the command line: one line naming the file (and line), no traceback, exit status != 0


def test_folder_without_csvs(tmp_path, capsys):
    (tmp_path / "MURA-v1.1").mkdir()
    code, _, err = run_stats(capsys, tmp_path / "MURA-v1.1")
    assert_one_error_line(code, err, str(tmp_path / "MURA-v1.1"), "index CSVs")
    code, _, err = run_stats(capsys, tmp_path)
    assert_one_error_line(code, err, "MURA-v1.1", "missing index CSV(s)")


def test_missing_folder_and_one_missing_csv(tmp_path, capsys, write_small_mura):
    code, _, err = run_stats(capsys, tmp_path / "nowhere")
    assert_one_error_line(code, err, str(tmp_path / "nowhere"), "folder not found")
    root = write_small_mura(tmp_path, SMALL, images=False)
    (root / "valid_labeled_studies.csv").unlink()
    code, _, err = run_stats(capsys, root)
    assert_one_error_line(code, err, str(root.resolve()), "valid_labeled_studies.csv")


@needs_real_index
@pytest.mark.parametrize(
    ("csv_name", "line", "make_bad", "expected"),
    [
        ("train_labeled_studies.csv", 5, lambda old: old + ",extra", "expected 2 comma-separated fields"),
        ("train_labeled_studies.csv", 7, lambda old: old[:-1] + "x", "label 'x' is not 0"),
        ("valid_labeled_studies.csv", 9, lambda old: old.rsplit(",", 1)[0], "got 1"),
        (
            "train_labeled_studies.csv",
            17,
            lambda old: old[:-1] + "0",
            "label 0 contradicts folder suffix '_positive'",
        ),
        ("train_image_paths.csv", 3, lambda old: old + ",1", "expected 1 field"),
        ("valid_image_paths.csv", 2, lambda old: old.replace("image", "img"), "does not have the shape"),
        ("train_image_paths.csv", 4, lambda old: old.replace("/train/", "/valid/"), "split 'valid'"),
        (
            "train_labeled_studies.csv",
            2,
            lambda old: old.replace("XR_SHOULDER", "XR_KNEE"),
            "unknown body part",
        ),
        (
            "valid_image_paths.csv",
            3,
            lambda old: old.replace("patient11185", "patient99999"),
            "does not list",
        ),
        (
            "valid_image_paths.csv",
            3,
            lambda old: old.replace("_positive", "_negative"),
            "differs from the listed",
        ),
    ],
)
def test_malformed_rows_of_the_real_index(tmp_path, capsys, csv_name, line, make_bad, expected):
    root = copy_real_index(tmp_path)
    edit_line(root / csv_name, line, make_bad((REAL_INDEX / csv_name).read_text().split("\n")[line - 1]))
    code, out, err = run_stats(capsys, root)
    assert_one_error_line(code, err, f"{root.resolve() / csv_name}:{line}: ", expected)
    assert out == ""


def test_duplicate_study_and_image_rows(tmp_path, capsys, write_small_mura):
    root = write_small_mura(tmp_path, SMALL, images=False)
    with open(root / "train_labeled_studies.csv", "a") as f:
        f.write("MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/,1\n")
    code, _, err = run_stats(capsys, root)
    assert_one_error_line(code, err, "train_labeled_studies.csv:3:", "listed twice (first on line 1)")
    root = write_small_mura(tmp_path / "b", SMALL, images=False)
    with open(root / "valid_image_paths.csv", "a") as f:
        f.write("MURA-v1.1/valid/XR_WRIST/patient00002/study1_negative/image2.png\n")
    code, _, err = run_stats(capsys, root)
    assert_one_error_line(code, err, "valid_image_paths.csv:4:", "listed twice (first on line 2)")


def test_study_without_images(tmp_path, capsys, write_small_mura):
    root = write_small_mura(tmp_path, SMALL, images=False)
    with open(root / "valid_labeled_studies.csv", "a") as f:
        f.write("MURA-v1.1/valid/XR_HAND/patient00003/study1_positive/,1\n")
    code, _, err = run_stats(capsys, root)
    assert_one_error_line(code, err, "valid_labeled_studies.csv:2:", "has no images in valid_image_paths.csv")


def test_line_numbers_count_blank_lines_with_crlf(tmp_path, capsys, write_small_mura):
    root = write_small_mura(tmp_path, SMALL, images=False)
    rows = (root / "train_labeled_studies.csv").read_text().splitlines()
    rows[1] = rows[1][:-1] + "7"
    (root / "train_labeled_studies.csv").write_bytes(
        ("\ufeffImg_Path,Label\r\n\r\n" + "\r\n".join(rows)).encode()
    )
    code, _, err = run_stats(capsys, root)
    assert_one_error_line(code, err, "train_labeled_studies.csv:4: label '7'")


def test_not_utf8_csv(tmp_path, capsys, write_small_mura):
    root = write_small_mura(tmp_path, SMALL, images=False)
    with open(root / "valid_image_paths.csv", "ab") as f:
        f.write(b"\xff\xfe garbage\n")
    code, _, err = run_stats(capsys, root)
    assert_one_error_line(code, err, "valid_image_paths.csv:4:", "not UTF-8")


def test_unwritable_csv_target(tmp_path, capsys, write_small_mura):
    root = write_small_mura(tmp_path, SMALL, images=False)
    target = tmp_path / "a_folder"
    (target / "inside").mkdir(parents=True)
    code, _, err = run_stats(capsys, root, "--csv", target)
    assert_one_error_line(code, err, str(target), "cannot write")


def test_stats_csv_never_replaces_the_index_or_a_users_file(tmp_path, write_small_mura, capsys):
    """`stats M --csv M/MURA-v1.1/valid_labeled_studies.csv` would replace the index with Table 2: refused, as
    is any existing file that is not an earlier Table 2 CSV; an earlier Table 2 CSV is refreshed."""
    from densenet_interp.cli import main

    root = write_small_mura(tmp_path, SMALL, images=False)
    index_file = root / "valid_labeled_studies.csv"
    before = index_file.read_bytes()
    assert main(["stats", str(root), "--csv", str(index_file)]) == 2
    assert "is inside the MURA folder" in capsys.readouterr().err and index_file.read_bytes() == before
    mine = tmp_path / "notes.csv"
    mine.write_text("my,own\n1,2\n")
    assert main(["stats", str(root), "--csv", str(mine)]) == 2
    assert "is not a Table 2 CSV" in capsys.readouterr().err and mine.read_text() == "my,own\n1,2\n"
    table = tmp_path / "table2.csv"
    assert main(["stats", str(root), "--csv", str(table)]) == 0
    assert main(["stats", str(root), "--csv", str(table)]) == 0  # its own earlier output: refreshed


def test_a_capped_sample_is_fixed_balanced_in_index_order_and_never_larger_than_asked():
    from densenet_interp.data.mura import sample_images

    table = pd.DataFrame({"label": [0] * 10 + [1] * 3, "row": range(13)})
    sample = sample_images(table, 6)
    assert sample["label"].tolist() == [0, 0, 0, 1, 1, 1] and sample["row"].is_monotonic_increasing
    assert sample.equals(sample_images(table, 6)) and not sample.equals(sample_images(table, 6, seed=1))
    short = sample_images(table, 8)  # only 3 abnormal: the normal ones fill the rest
    assert sorted(short["label"].tolist()) == [0] * 5 + [1] * 3
    assert sample_images(table, 7)["label"].sum() == 3 and len(sample_images(table, 7)) == 7
    assert sample_images(table, None).equals(table) and sample_images(table, 13).equals(table)
    with pytest.raises(ValueError, match="positive number"):
        sample_images(table, 0)
