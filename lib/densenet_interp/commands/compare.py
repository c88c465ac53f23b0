"""``densenet-interp compare EXPECTED MADE [--files GLOB ...]``: are two results folders the same, byte for byte?

The check behind ``make verify-results``: the committed tables (EXPECTED, e.g. ``results/mini``) against the ones
a run from scratch just made (MADE). Every file of EXPECTED matching a pattern is compared with its namesake in
MADE; each one that differs or is missing from MADE gets one line (for text files, the first line that differs,
on both sides). Files that only MADE has (e.g. predictions, which are not committed) are counted, not compared.
Exit status 0 when all are identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_FILES = ("tables/*.csv", "predictions/*.csv")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "compare",
        help="compare two results folders file by file (the check of make verify-results)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("expected", help="the reference results folder, e.g. results/mini (the committed tables)")
    p.add_argument("made", help="the results folder to check, e.g. one a run from scratch just wrote")
    p.add_argument(
        "--files",
        nargs="+",
        default=list(DEFAULT_FILES),
        metavar="GLOB",
        help=f"file patterns relative to both folders (default: {' '.join(DEFAULT_FILES)})",
    )
    p.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="GLOB",
        help="patterns of files not to compare (e.g. tables/*_seeds.csv when the run made no seeds)",
    )
    return p


def first_difference(a: bytes, b: bytes) -> str:
    """Where two files part: the first differing line of text files, else the first differing byte."""
    try:
        lines_a, lines_b = a.decode().splitlines(), b.decode().splitlines()
    except UnicodeDecodeError:
        at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        return f"byte {at} ({len(a)} vs {len(b)} bytes)"
    for number, (x, y) in enumerate(zip(lines_a, lines_b, strict=False), start=1):
        if x != y:
            return f"line {number}: {x[:70]!r} vs {y[:70]!r}"
    return f"{len(lines_a)} vs {len(lines_b)} lines"


def _matching(root: Path, patterns, exclude=()) -> set[str]:
    found = {
        str(path.relative_to(root)) for pattern in patterns for path in root.glob(pattern) if path.is_file()
    }
    skipped = {str(path.relative_to(root)) for pattern in exclude for path in root.glob(pattern)}
    return found - skipped


def compare(expected, made, patterns, exclude=()) -> tuple[list[str], list[str], list[str]]:
    """``(identical paths, one line per problem, paths only MADE has)`` for the files matching ``patterns``
    and none of ``exclude``."""
    expected, made = Path(expected), Path(made)
    same, problems = [], []
    for name in sorted(_matching(expected, patterns, exclude)):
        a, b = expected / name, made / name
        if not b.is_file():
            problems.append(f"{name}: missing from {made}")
        elif (data_a := a.read_bytes()) != (data_b := b.read_bytes()):
            problems.append(f"{name}: differs, {first_difference(data_a, data_b)}")
        else:
            same.append(name)
    return same, problems, sorted(_matching(made, patterns, exclude) - _matching(expected, patterns, exclude))


def run(args: argparse.Namespace) -> int:
    from ..errors import UserFacingError

    for folder in (args.expected, args.made):
        if not Path(folder).is_dir():
            raise UserFacingError("folder not found; expected a results folder such as results/mini", folder)
    same, problems, only_made = compare(args.expected, args.made, args.files, args.exclude)
    if not same and not problems:
        raise UserFacingError(f"no file matches {' '.join(args.files)}", args.expected)
    for line in problems:
        print(line)
    print(
        f"{len(same)} file(s) identical, {len(problems)} differ or are missing ({args.expected} vs {args.made})"
        + (f"; {len(only_made)} more only in {args.made}, not compared" if only_made else "")
    )
    return 1 if problems else 0
