"""``densenet-interp stats MURA_DIR [--csv OUT] [--check-files | --sample N]``: the paper's Table 2 of a MURA folder."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "stats",
        help="print the study distribution (the paper's Table 2) of a MURA-layout folder",
        description="Read the four index CSVs of a MURA-v1.1 folder (or its parent) and print the number of "
        "normal and abnormal studies per body part and split, in the layout of the paper's Table 2.",
    )
    p.add_argument("mura_dir", help="the MURA-v1.1 folder or the folder that contains it")
    p.add_argument(
        "--csv",
        metavar="OUT",
        help="also write the table as CSV to OUT (never inside the MURA folder, never over a file that is not "
        "an earlier Table 2 CSV)",
    )
    p.add_argument(
        "--check-files",
        action="store_true",
        help="also open every listed image and report missing or undecodable ones by path",
    )
    p.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="also check that every listed image exists (counting the missing ones) and decode a sample of N "
        "of them (the same N for the same index); what `make` runs before a real-MURA training",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Print Table 2 (and check the images). 0, or 1 when ``--check-files`` found problems (one line each)."""
    from pathlib import Path

    from ..data.mura import check_files, fingerprint, format_table2, read_mura, table2
    from ..errors import DataError
    from ..paths import write_csv_atomic

    if args.sample is not None and (args.sample < 1 or args.check_files):
        raise DataError(
            f"--sample is {args.sample}; expected a positive number of images, and not with --check-files"
        )
    index = read_mura(args.mura_dir)
    table = table2(index)
    print(format_table2(table))
    print(
        f"\n{len(index.studies)} studies, {len(index.images)} images in {index.root} "
        f"(index fingerprint {fingerprint(index)})"
    )
    if args.csv:
        _check_csv_target(Path(args.csv), index.root, table.head(0).to_csv().splitlines()[0])
        try:
            write_csv_atomic(table, Path(args.csv))
        except OSError as exc:
            raise DataError(f"cannot write the CSV ({exc.strerror or exc})", args.csv) from None
        print(f"wrote {args.csv}")
    if args.sample is not None:
        return _report(*sample_problems(index, args.sample), len(index.images), what="sampled")
    if not args.check_files:
        return 0
    problems = check_files(index)
    for path, problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} of {len(index.images)} images are missing or cannot be decoded")
        return 1
    print(f"all {len(index.images)} images decode")
    return 0


def sample_problems(index, n: int, seed: int = 0) -> tuple[list[tuple[str, str]], int]:
    """``(problems, images decoded)``: every listed image that is missing, then the undecodable ones among a
    seeded sample of ``n`` of those present (spread over the index order: rows chosen by a fixed generator)."""
    import os

    import numpy as np

    from ..data.mura import MuraIndex, check_files

    paths = index.images["abs_path"].tolist()
    present = np.array([os.path.isfile(path) for path in paths], dtype=bool)
    problems = [(path, "file not found") for path, ok in zip(paths, present, strict=True) if not ok]
    rows = np.flatnonzero(present)
    if len(rows) > n:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=n, replace=False))
    sample = MuraIndex(index.root, index.images.iloc[rows].reset_index(drop=True), index.studies)
    return problems + check_files(sample), len(rows)


def _report(problems: list[tuple[str, str]], decoded: int, listed: int, what: str) -> int:
    """Print the problems (the first ten by path, on stderr) and a summary line; 1 if there were any."""
    for path, problem in problems[:10]:
        print(f"{path}: {problem}", file=sys.stderr)
    if len(problems) > 10:
        print(f"... and {len(problems) - 10} more", file=sys.stderr)
    missing = sum(problem == "file not found" for _, problem in problems)
    if problems:
        print(
            f"{missing} of {listed} listed images are missing and {len(problems) - missing} of the {decoded} "
            f"{what} do not decode"
        )
        return 1
    print(f"all {listed} listed images exist; the {decoded} {what} decode")
    return 0


def _check_csv_target(target, mura_root, header_line: str) -> None:
    """Refuse (DataError naming the file) a target inside the MURA folder, or an existing file that is not a
    Table 2 CSV this command wrote (its header differs): the index CSVs and the user's files are never replaced."""
    from pathlib import Path

    from ..errors import DataError

    target, root = Path(target).expanduser().resolve(), Path(mura_root).expanduser().resolve()
    if target == root or root in target.parents:
        raise DataError(f"is inside the MURA folder {root}; write the table somewhere else", target)
    if target.is_dir():
        raise DataError("cannot write the CSV there: it is a folder; expected a file name", target)
    if target.exists():
        try:
            with open(target, encoding="utf-8") as handle:
                header = handle.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            header = None
        if header != header_line:
            raise DataError("exists and is not a Table 2 CSV written by `stats`; choose another name", target)
