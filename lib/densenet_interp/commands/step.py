"""``densenet-interp step --label LABEL --log FILE -- COMMAND ...``: one pipeline step, told on the console in a few lines.

Make runs every step of ``make reproduce`` (and ``make seeds``) through this, so that the console says what is
happening instead of printing papermill command lines, TensorFlow's start-up notices and kernel warnings:

* ``LABEL ... done in 12 s`` on one line for a step that has nothing else to say;
* else ``LABEL ...`` followed on the same line by the first line of the command's output that matters
  (``--show``, by default one line per training epoch with its ETA), the next ones indented below it, and
  ``LABEL done in 3m12s: selected epoch 12 (val_accuracy 0.79)``;
* the progress bars of long CPU steps (:mod:`densenet_interp.progress`) drawn in place while they run, when
  the console is a terminal (nothing is left of them on the console when the step is done);
* on failure ``LABEL FAILED`` with the exit status, the last lines of the log and where the full log is.

Everything the command writes (stdout and stderr, the kernel's too) goes to ``--log``, so nothing is lost.
``--verbose`` (``make ... VERBOSE=1``) echoes every line. The exit status is the command's.
"""

from __future__ import annotations

import argparse

SHOW_DEFAULT = r"^(epoch \d+/\d+ |\S+: trained meanwhile|waiting: )"
"""Lines worth a console line: each training epoch, and a wait for (or the model of) another worker."""
RESULT = r"^\S+: (selected epoch \d+ \(val_accuracy [0-9.]+\))"
"""A training's result, appended to the step's ``done`` line."""
TAIL_LINES = 25
ERASE_TO_LINE_END = "\x1b[K"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "step",
        help="run one pipeline step with a one-line label, its output in a log file (what Make calls)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--label", required=True, help="what the step does, e.g. '[4/18] train all_pretrained'")
    p.add_argument("--log", required=True, help="file that receives all the command's output")
    p.add_argument("--show", default=SHOW_DEFAULT, help="regular expression of the output lines to echo")
    p.add_argument("--verbose", action="store_true", help="echo every output line")
    p.add_argument(
        "argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="-- then the command and its arguments"
    )
    return p


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class _Console:
    """The step's lines on standard output: the label, the output lines that matter, a progress bar in place.

    The first output line continues the label's line (``LABEL ... epoch 1/16 ...``); the next ones are
    indented below it. A bar is drawn where the next line would go and replaced by it (or by the end).
    """

    def __init__(self, label: str):
        self.label, self.shown, self.drawn = label, 0, False
        print(f"{label} ...", end="", flush=True)

    def _start(self) -> str:
        """Where the next text goes: the rest of the label's line, or a new indented line."""
        if self.drawn:  # back to the start of the bar's line
            return f"\r{self.label} ... " if not self.shown else "\r    "
        return " " if not self.shown else "    "

    def line(self, text: str) -> None:
        print(f"{self._start()}{text}{ERASE_TO_LINE_END if self.drawn else ''}", flush=True)
        self.shown += 1
        self.drawn = False

    def bar(self, text: str) -> None:
        """Draw ``text`` in place, cut to the terminal's width: a line that wrapped could not be redrawn."""
        import shutil

        before = len(f"{self.label} ... ") if not self.shown else 4  # what the line holds before the bar
        room = shutil.get_terminal_size().columns - 1 - before
        print(f"{self._start()}{text[: max(room, 0)]}{ERASE_TO_LINE_END}", end="", flush=True)
        self.drawn = True

    def end(self, text: str) -> None:
        """``LABEL ... text`` (nothing shown), or ``LABEL text`` on a line of its own; no bar is left."""
        if self.drawn:
            print(
                f"\r{self.label} ...{ERASE_TO_LINE_END}" if not self.shown else f"\r{ERASE_TO_LINE_END}",
                end="",
            )
        print(f" {text}" if not self.shown else f"{self.label} {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    import collections
    import re
    import subprocess
    import sys
    import time
    from pathlib import Path

    from ..errors import UserFacingError

    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise UserFacingError(
            "no command given; expected: densenet-interp step --label LABEL --log FILE -- COMMAND ..."
        )
    try:
        show = re.compile(args.show)
    except re.error as exc:
        raise UserFacingError(f"--show is not a regular expression ({exc})") from None
    log_path = Path(args.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    from ..progress import PATTERN

    bar = re.compile(PATTERN)
    live = sys.stdout.isatty() and not args.verbose  # progress bars are drawn in place on a terminal only
    started = time.perf_counter()
    console = _Console(args.label)
    results = []
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with open(log_path, "w") as log:
        log.write(f"$ {' '.join(command)}\n")
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            raise UserFacingError(f"cannot start {command[0]!r} ({exc.strerror or exc})") from None
        try:
            for line in process.stdout:
                log.write(line)
                log.flush()
                text = line.rstrip("\n")
                if text.strip():
                    tail.append(text)
                if found := re.search(RESULT, text):
                    results.append(found.group(1))
                if live and bar.search(text):
                    console.bar(text.strip())
                elif args.verbose or (text and show.search(text)):
                    console.line(text)
            status = process.wait()
        except KeyboardInterrupt:
            process.terminate()
            process.wait()
            raise
    elapsed = _duration(time.perf_counter() - started)
    result = f": {'; '.join(results)}" if results else ""
    if status == 0:
        console.end(f"done in {elapsed}{result}")
        return 0
    console.end("FAILED")
    print(
        f"{args.label} FAILED (exit status {status}) after {elapsed}; the last lines of {log_path}:",
        file=sys.stderr,
    )
    for text in tail:
        print(f"    {text}", file=sys.stderr)
    return status
