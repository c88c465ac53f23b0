"""Read a MURA-layout folder (real MURA v1.1 or the phantom) into tables of images and studies; Table 2.

A MURA folder holds four headerless index CSVs (``train_image_paths.csv``, ``train_labeled_studies.csv``,
``valid_image_paths.csv``, ``valid_labeled_studies.csv``) whose rows are paths relative to the folder's parent,
e.g. ``MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image1.png`` and
``MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/,1``.

:func:`read_mura` validates every row (path shape, split, body part, label against its folder suffix,
duplicates, every image in a listed study, every study with images) and reports the first problem of a file as
one :class:`~densenet_interp.errors.DataError` line ``<csv>:<line>: <problem>``, with the line numbered as a
text editor numbers it. Copies of the CSVs differ in line endings, final newline, a UTF-8 BOM, blank lines and
an optional header row; all are tolerated. Parsing is vectorised (the real index reads in well under a second).

A study is identified by ``(split, body part, patient, study)``: MURA numbers studies per patient *and* body
part, so ``patient00001/study1`` exists under several body parts. ``study_key`` is that tuple as one string.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..profiles import BODY_PARTS
from .images import read_radiograph

ROOT_NAME = "MURA-v1.1"
SPLITS = ("train", "valid")
SUFFIX_LABEL = {"negative": 0, "positive": 1}


def image_csv_name(split: str) -> str:
    return f"{split}_image_paths.csv"


def study_csv_name(split: str) -> str:
    return f"{split}_labeled_studies.csv"


CSV_NAMES = tuple(name for split in SPLITS for name in (image_csv_name(split), study_csv_name(split)))

# The paper's Table 2 rows, in its order and with its names.
TABLE2_ROWS = (
    ("XR_ELBOW", "Elbow"),
    ("XR_FINGER", "Finger"),
    ("XR_HAND", "Hand"),
    ("XR_HUMERUS", "Humerus"),
    ("XR_FOREARM", "Forearm"),
    ("XR_SHOULDER", "Shoulder"),
    ("XR_WRIST", "Wrist"),
)
TABLE2_TOTAL_ROW = "Total No. of Studies"
TABLE2_COLUMNS = ("train_normal", "train_abnormal", "valid_normal", "valid_abnormal", "total")
_COUNT_CELLS = (("train", 0), ("train", 1), ("valid", 0), ("valid", 1))

_PATH_HEAD = r"^MURA-v1\.1/(?P<split>[^/,]+)/(?P<body_part>XR_[A-Z]+)/(?P<patient>patient\d+)/"
_STUDY_FOLDER = r"(?P<study>study\d+)_(?P<suffix>positive|negative)"
STUDY_PATH_RE = _PATH_HEAD + _STUDY_FOLDER + r"/?$"
IMAGE_PATH_RE = _PATH_HEAD + _STUDY_FOLDER + r"/image(?P<view_index>\d+)\.png$"
_STUDY_SHAPE = "MURA-v1.1/<split>/XR_<PART>/patient<digits>/study<digits>_<positive|negative>/"
_IMAGE_SHAPE = _STUDY_SHAPE + "image<digits>.png"
# A header row: comma-separated words, no slash (e.g. "Img_Path,Label" or "path"). Data rows always have '/'.
_HEADER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*(,[A-Za-z_][A-Za-z0-9_ ]*)*$")
# macOS resource-fork files ("._image1.png") are never images; rows naming them are skipped.
_MACOS_JUNK_RE = r"/\._[^/]*$"


@dataclass(frozen=True, eq=False)
class MuraIndex:
    """The parsed index of one MURA folder.

    ``images``: one row per image (``path`` as in the CSV, ``abs_path``, ``split``, ``body_part``, ``patient``,
    ``study``, ``study_key``, ``label`` 0/1 from the study CSV, ``view_index`` = N of ``imageN.png``).
    ``studies``: one row per study (``split``, ``body_part``, ``patient``, ``study``, ``study_key``, ``label``,
    ``n_images``, ``path`` with its trailing slash). Both keep the CSV row order, train before valid.
    """

    root: Path
    images: pd.DataFrame
    studies: pd.DataFrame


# ----------------------------------------------------------------------------------------------------------
# locating the folder and reading the CSV text


def find_mura_root(path: str | Path) -> Path:
    """Return the folder holding the four index CSVs, given that folder (``MURA-v1.1``) or its parent."""
    given = Path(path).expanduser()
    if not given.exists():
        raise DataError(
            "folder not found; expected the MURA-v1.1 folder or the folder that contains it", given
        )
    if not given.is_dir():
        raise DataError("is a file; expected the MURA-v1.1 folder or the folder that contains it", given)
    child = given / ROOT_NAME
    root = child if child.is_dir() and not _has_any_csv(given) else given
    missing = [name for name in CSV_NAMES if not (root / name).is_file()]
    if len(missing) == len(CSV_NAMES) and root is given:
        raise DataError(
            f"neither a {ROOT_NAME} folder nor its parent: none of the index CSVs ({', '.join(CSV_NAMES)}) is "
            f"here and there is no {ROOT_NAME}/ subfolder",
            given,
        )
    if missing:
        raise DataError(f"missing index CSV(s) {', '.join(missing)}; a MURA folder holds all four", root)
    return root.resolve()


def _has_any_csv(folder: Path) -> bool:
    return any((folder / name).is_file() for name in CSV_NAMES)


def _read_rows(csv_path: Path) -> pd.DataFrame:
    """Return the data rows of an index CSV as a frame ``(line, text)``: stripped, no blanks, no header.

    Line numbers count every line (blank ones too) from 1, after CRLF/CR are read as line breaks.
    """
    try:
        raw = csv_path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror or exc})", csv_path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); expected plain CSV", csv_path, line
        ) from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    rows = pd.DataFrame({"line": range(1, len(lines) + 1), "text": pd.Series(lines, dtype=str).str.strip()})
    rows = rows[rows["text"] != ""]
    if len(rows) and _HEADER_RE.match(rows["text"].iloc[0]):
        rows = rows.iloc[1:]
    return rows.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------------
# validating rows: each check removes the rows it flags; the earliest flagged line of a file is reported


class _Violations:
    """Collects the earliest problem found in one CSV file across several vectorised checks."""

    def __init__(self, csv_path: Path):
        self.csv_path = csv_path
        self.first: tuple[int, str] | None = None

    def drop(self, rows: pd.DataFrame, bad: pd.Series, problem: Callable[[pd.Series], str]) -> pd.DataFrame:
        """Note the first row where ``bad`` holds (``problem(row)`` describes it); return the other rows."""
        bad = bad.fillna(True).astype(bool)
        if bad.any():
            row = rows[bad].iloc[0]
            if self.first is None or row["line"] < self.first[0]:
                self.first = (int(row["line"]), problem(row))
        return rows[~bad]

    def raise_first(self) -> None:
        if self.first is not None:
            line, problem = self.first
            raise DataError(problem, self.csv_path, line)


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_path_fields(
    rows: pd.DataFrame, split: str, pattern: str, shape: str, found: _Violations, what: str
) -> pd.DataFrame:
    """Parse ``rows.path`` with ``pattern`` into columns and flag shape, split and body part problems."""
    parsed = rows["path"].str.extract(pattern)
    rows = pd.concat([rows, parsed], axis=1)
    rows = found.drop(
        rows,
        rows["split"].isna(),
        lambda r: f"{what} path '{_short(r['path'])}' does not have the shape {shape}",
    )
    rows = found.drop(
        rows,
        rows["split"] != split,
        lambda r: f"path is in split '{r['split']}', but this file lists the {split} split",
    )
    rows = found.drop(
        rows,
        ~rows["body_part"].isin(BODY_PARTS),
        lambda r: f"unknown body part '{r['body_part']}'; expected one of {', '.join(BODY_PARTS)}",
    )
    rows["study_key"] = rows["split"] + "/" + rows["body_part"] + "/" + rows["patient"] + "/" + rows["study"]
    return rows


def _flag_duplicates(rows: pd.DataFrame, column: str, found: _Violations, what: str) -> pd.DataFrame:
    repeated = rows[column].duplicated(keep="first")
    if not repeated.any():
        return rows
    first_line = rows.drop_duplicates(column).set_index(column)["line"]
    return found.drop(
        rows, repeated, lambda r: f"{what} '{r[column]}' listed twice (first on line {first_line[r[column]]})"
    )


def _parse_studies(root: Path, split: str) -> pd.DataFrame:
    csv_path = root / study_csv_name(split)
    found = _Violations(csv_path)
    rows = _read_rows(csv_path)
    n_fields = rows["text"].str.count(",") + 1
    rows = found.drop(
        rows,
        n_fields != 2,
        lambda r: (
            f"expected 2 comma-separated fields (study folder, label), got "
            f"{r['text'].count(',') + 1}: '{_short(r['text'])}'"
        ),
    )
    fields = rows["text"].str.split(",", n=1, expand=True) if len(rows) else pd.DataFrame(columns=[0, 1])
    rows = rows.assign(path=fields[0].str.strip(), label_text=fields[1].str.strip())
    rows = found.drop(
        rows,
        ~rows["label_text"].isin(["0", "1"]),
        lambda r: f"label '{r['label_text']}' is not 0 (normal) or 1 (abnormal)",
    )
    rows = _check_path_fields(rows, split, STUDY_PATH_RE, _STUDY_SHAPE, found, "study")
    rows["label"] = rows["label_text"].astype(int)
    rows = found.drop(
        rows,
        rows["label"] != rows["suffix"].map(SUFFIX_LABEL),
        lambda r: f"label {r['label']} contradicts folder suffix '_{r['suffix']}'",
    )
    rows = _flag_duplicates(rows, "study_key", found, "study")
    found.raise_first()
    rows["path"] = rows["path"].where(rows["path"].str.endswith("/"), rows["path"] + "/")
    return rows


def _parse_images(root: Path, split: str, studies: pd.DataFrame) -> pd.DataFrame:
    csv_path = root / image_csv_name(split)
    found = _Violations(csv_path)
    rows = _read_rows(csv_path)
    rows = rows[~rows["text"].str.contains(_MACOS_JUNK_RE, regex=True)]
    rows = found.drop(
        rows,
        rows["text"].str.contains(",", regex=False),
        lambda r: f"expected 1 field (the image path), got {r['text'].count(',') + 1}: '{_short(r['text'])}'",
    )
    rows = rows.assign(path=rows["text"])
    rows = _check_path_fields(rows, split, IMAGE_PATH_RE, _IMAGE_SHAPE, found, "image")
    rows = _flag_duplicates(rows, "path", found, "image")
    listed = studies.set_index("study_key")
    rows = found.drop(
        rows,
        ~rows["study_key"].isin(listed.index),
        lambda r: f"image of study '{r['study_key']}', which {study_csv_name(split)} does not list",
    )
    rows = rows.assign(
        label=rows["study_key"].map(listed["label"]), listed_suffix=rows["study_key"].map(listed["suffix"])
    )
    rows = found.drop(
        rows,
        rows["suffix"] != rows["listed_suffix"],
        lambda r: (
            f"folder suffix '_{r['suffix']}' differs from the listed study's '_{r['listed_suffix']}' "
            f"({study_csv_name(split)})"
        ),
    )
    found.raise_first()
    rows["view_index"] = rows["view_index"].astype(int)
    rows["label"] = rows["label"].astype(int)
    return rows


def _check_every_study_has_images(
    root: Path, split: str, studies: pd.DataFrame, images: pd.DataFrame
) -> None:
    found = _Violations(root / study_csv_name(split))
    found.drop(
        studies,
        ~studies["study_key"].isin(images["study_key"]),
        lambda r: f"study '{r['path']}' has no images in {image_csv_name(split)}",
    )
    found.raise_first()


# ----------------------------------------------------------------------------------------------------------
# the index


_IMAGE_COLUMNS = [
    "path",
    "abs_path",
    "split",
    "body_part",
    "patient",
    "study",
    "study_key",
    "label",
    "view_index",
]
_STUDY_COLUMNS = ["split", "body_part", "patient", "study", "study_key", "label", "n_images", "path"]


def read_mura(path: str | Path) -> MuraIndex:
    """Read and validate the four index CSVs of a MURA folder (given the folder or its parent)."""
    root = find_mura_root(path)
    image_parts, study_parts = [], []
    for split in SPLITS:
        studies = _parse_studies(root, split)
        images = _parse_images(root, split, studies)
        _check_every_study_has_images(root, split, studies, images)
        studies["n_images"] = studies["study_key"].map(images["study_key"].value_counts()).astype(int)
        image_parts.append(images)
        study_parts.append(studies)
    images = pd.concat(image_parts, ignore_index=True)
    images["abs_path"] = str(root) + "/" + images["path"].str.slice(len(ROOT_NAME) + 1)
    studies = pd.concat(study_parts, ignore_index=True)
    return MuraIndex(root=root, images=images[_IMAGE_COLUMNS].copy(), studies=studies[_STUDY_COLUMNS].copy())


def fingerprint(index: MuraIndex, files: bool = False) -> str:
    """A 16-hex-digit sha256 of the index's normalised CSV rows, for model cards and cache keys.

    Rows are hashed as parsed (no BOM, header, blank lines or CR; study paths with their trailing slash), so
    copies that differ only in those respects fingerprint the same. The CSVs do not cover pixel contents: with
    ``files=True`` each image's size and modification time are mixed in too, so that regenerated images with
    an unchanged index change the fingerprint (costs one ``stat`` per image).
    """
    digest = hashlib.sha256()
    for split in SPLITS:
        studies = index.studies[index.studies["split"] == split]
        images = index.images[index.images["split"] == split]
        study_rows = studies["path"] + "," + studies["label"].astype(str)
        digest.update(f"{study_csv_name(split)}\n{chr(10).join(study_rows)}\n".encode())
        digest.update(f"{image_csv_name(split)}\n{chr(10).join(images['path'])}\n".encode())
    if files:
        for abs_path in index.images["abs_path"]:
            try:
                stat = os.stat(abs_path)
            except OSError as exc:
                raise DataError(f"cannot stat image ({exc.strerror or exc})", abs_path) from None
            digest.update(f"{stat.st_size},{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def select_images(index: MuraIndex, split: str, body_parts: Iterable[str] | str) -> pd.DataFrame:
    """The images of one split and some body parts (a model set's data), in index order, renumbered from 0."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    parts = (body_parts,) if isinstance(body_parts, str) else tuple(body_parts)
    unknown = [part for part in parts if part not in BODY_PARTS]
    if unknown or not parts:
        raise ValueError(f"unknown body part(s) {unknown or parts}; expected some of {', '.join(BODY_PARTS)}")
    images = index.images
    chosen = images[(images["split"] == split) & images["body_part"].isin(parts)].reset_index(drop=True)
    if chosen.empty:
        raise DataError(f"no {split} images of {', '.join(parts)} in this MURA folder", index.root)
    return chosen


def sample_images(images: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    """A fixed sample of ``n`` rows of an images table (all of them when ``n`` is None or not smaller), in
    index order, renumbered from 0: half of each label where there are enough (the rest from the other label),
    drawn with a generator seeded by ``seed``, so that the same table gives the same sample."""
    if n is None or len(images) <= n:
        return images.reset_index(drop=True)
    if n < 1:
        raise ValueError(f"n must be a positive number of images or None, got {n!r}")
    rng = np.random.default_rng(seed)
    by_label = {
        label: rng.permutation(np.flatnonzero(images["label"].to_numpy() == label)) for label in (0, 1)
    }
    half = {label: min(len(rows), n // 2 + (label == 1) * (n % 2)) for label, rows in by_label.items()}
    for label in (0, 1):  # one label short: the other fills the rest
        half[label] = min(len(by_label[label]), n - half[1 - label])
    rows = np.sort(np.concatenate([by_label[label][: half[label]] for label in (0, 1)]))
    return images.iloc[rows].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------------
# tables


def _distribution(frame: pd.DataFrame, total_row: str) -> pd.DataFrame:
    """Count rows of ``frame`` per body part (paper order and names) x split x label, with totals."""
    counts = frame.groupby(["body_part", "split", "label"]).size()
    table = pd.DataFrame(
        [
            [int(counts.get((part, split, label), 0)) for split, label in _COUNT_CELLS]
            for part, _ in TABLE2_ROWS
        ],
        index=pd.Index([name for _, name in TABLE2_ROWS], name="Study"),
        columns=list(TABLE2_COLUMNS[:-1]),
    )
    table["total"] = table.sum(axis=1)
    table.loc[total_row] = table.sum(axis=0)
    return table.astype(int)


def table2(index: MuraIndex) -> pd.DataFrame:
    """The paper's Table 2: studies per body part (its rows and order), split and label, with totals."""
    return _distribution(index.studies, TABLE2_TOTAL_ROW)


def image_counts(index: MuraIndex) -> pd.DataFrame:
    """Table 2's layout counting images instead of studies (last row ``Total No. of Images``)."""
    return _distribution(index.images, "Total No. of Images")


def images_per_study(index: MuraIndex) -> pd.Series:
    """How many studies have 1, 2, 3, ... images (index: images per study; values: number of studies)."""
    counts = index.studies["n_images"].value_counts().sort_index()
    counts.index.name = "images_per_study"
    return counts.rename("studies")


def format_table2(table: pd.DataFrame) -> str:
    """Aligned text in the paper's layout: a Train / Validation x Normal / Abnormal header, then Total."""
    name_width = max(len(str(name)) for name in [table.index.name or "Study", *table.index])
    width = max(len("Abnormal"), *(len(str(v)) for v in table.to_numpy().ravel()))
    group = 2 * width + 2
    head1 = "  ".join(
        [(table.index.name or "Study").ljust(name_width), "Train".center(group), "Validation".center(group)]
        + ["Total".rjust(width)]
    )
    head2 = "  ".join([" " * name_width] + [label.rjust(width) for label in ("Normal", "Abnormal") * 2])
    lines = [head1.rstrip(), head2.rstrip(), "-" * len(head1.rstrip())]
    for name, values in table.iterrows():
        if name == table.index[-1]:
            lines.append("-" * len(head1.rstrip()))
        lines.append("  ".join([str(name).ljust(name_width)] + [str(int(v)).rjust(width) for v in values]))
    return "\n".join(lines)


def table2_markdown(table: pd.DataFrame) -> str:
    """Table 2 as a Markdown table (one header row: Markdown has no two-level headers)."""
    header = ["Study", "Train Normal", "Train Abnormal", "Validation Normal", "Validation Abnormal", "Total"]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for name, values in table.iterrows():
        lines.append("| " + " | ".join([str(name)] + [str(int(v)) for v in values]) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------
# image files


def check_files(index: MuraIndex, workers: int | None = None) -> list[tuple[str, str]]:
    """Decode every listed image; return ``(absolute path, problem)`` for each missing or undecodable one.

    Threads suffice: PIL releases the GIL while decoding. Results keep the index order.
    """

    def problem_of(path: str) -> tuple[str, str] | None:
        try:
            read_radiograph(path)
        except DataError as exc:
            return (path, exc.problem)
        return None

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(problem_of, index.images["abs_path"].tolist()))
    return [result for result in results if result is not None]
