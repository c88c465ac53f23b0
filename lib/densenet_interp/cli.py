"""The ``densenet-interp`` command line: registers the subcommands of :mod:`densenet_interp.commands`.

Each subcommand is one module there with ``add_parser`` and ``run``; command modules import nothing heavy
until ``run``, so ``--help`` is instant and never imports TensorFlow. This is the one place that turns a
problem the user can fix (:class:`~densenet_interp.errors.UserFacingError`) into one line on stderr and exit
status 2, and Ctrl-C into one line and exit status 130: never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import UserFacingError

COMMANDS = (
    "profile",
    "stats",
    "phantom",
    "cases",
    "pretrain",
    "train",
    "estimate",
    "explain",
    "shortcut",
    "seeds",
    "app",
    "compare",
    "step",
)
"""Subcommand names, in the order ``--help`` lists them; each is a module of :mod:`densenet_interp.commands`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="densenet-interp",
        description="Train DenseNet on MURA (or the offline phantom MURA) and explain it with layer-wise "
        "activations and class activation maps.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines: results and problems only"
    )
    loudness.add_argument("-v", "--verbose", action="store_true", help="progress with debugging detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        command = importlib.import_module(f"{__package__}.commands.{name}")
        command.add_parser(sub).set_defaults(run=command.run)
    return parser


class _CurrentStderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time (a test's capture, a redirected stream)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ assigns it; the current stderr always wins
        pass


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Progress goes through :mod:`logging` (logger ``densenet_interp``) to stderr, bare lines: INFO by default,
    only warnings with ``-q``, DEBUG too with ``-v``. A command's result (a table, a summary line, the JSON of
    ``profile``) is its output on stdout, and problems with an input are one line each on stderr, whatever
    the level."""
    logger = logging.getLogger(__package__)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet, args.verbose)
    try:
        return int(args.run(args) or 0)
    except UserFacingError as exc:
        print(f"densenet-interp {args.command}: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"densenet-interp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
