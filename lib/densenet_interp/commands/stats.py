"""``densenet-interp stats MURA_DIR [--csv OUT] [--check-files]``: the paper's Table 2 of a MURA-layout folder."""

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
    return p


def run(args: argparse.Namespace) -> int:
    """Print Table 2 (and check the images). 0, or 1 when ``--check-files`` found problems (one line each)."""
    from pathlib import Path

    from ..data.mura import check_files, fingerprint, format_table2, read_mura, table2
    from ..errors import DataError
    from ..paths import write_csv_atomic

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
