"""``densenet-interp step``: the console of ``make reproduce``. One line per quiet step, the epoch lines of a
training with its result on the ``done`` line, everything in the log, and a failure that says where to look."""

from __future__ import annotations

import sys
from pathlib import Path

from densenet_interp.cli import main

PY = sys.executable


def _step(tmp_path, code: str, *extra: str) -> tuple[int, Path]:
    log = tmp_path / "logs" / "step.log"
    status = main(["step", "--label", "[2/5] something", "--log", str(log), *extra, "--", PY, "-c", code])
    return status, log


def test_a_quiet_step_is_one_line_and_its_output_goes_to_the_log(tmp_path, capsys):
    status, log = _step(
        tmp_path, "import sys; print('papermill noise'); print('I0000 oneDNN', file=sys.stderr)"
    )
    out = capsys.readouterr()
    assert status == 0
    assert out.out.splitlines() == [out.out.splitlines()[0]] and out.out.startswith(
        "[2/5] something ... done in"
    )
    assert "papermill noise" in log.read_text() and "I0000 oneDNN" in log.read_text()
    assert "noise" not in out.out + out.err


def test_a_training_shows_its_epochs_and_its_result_on_the_done_line(tmp_path, capsys):
    code = (
        "print('training wrist_random (mini): 964 train / 66 valid images');"
        "print('epoch 1/2  loss 0.7  ETA 0m10s'); print('Executing Cell 3-----');"
        "print('epoch 2/2  loss 0.6'); print('wrist_random: selected epoch 2 (val_accuracy 0.7879); wrote m')"
    )
    status, _ = _step(tmp_path, code)
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines == [
        "[2/5] something ... epoch 1/2  loss 0.7  ETA 0m10s",  # the first shown line continues the label's
        "    epoch 2/2  loss 0.6",
        lines[-1],
    ]
    assert lines[-1].startswith("[2/5] something done in ") and lines[-1].endswith(
        ": selected epoch 2 (val_accuracy 0.7879)"
    )


def test_a_failing_step_keeps_its_exit_status_and_shows_the_end_of_its_log(tmp_path, capsys):
    code = "import sys; [print(f'line {i}') for i in range(40)]; print('ValueError: boom'); sys.exit(7)"
    status, log = _step(tmp_path, code)
    out = capsys.readouterr()
    assert status == 7
    assert "[2/5] something FAILED (exit status 7)" in out.err and str(log) in out.err
    assert "ValueError: boom" in out.err and "line 39" in out.err and "line 0\n" not in out.err


def test_verbose_shows_everything(tmp_path, capsys):
    status, _ = _step(tmp_path, "print('papermill noise')", "--verbose")
    assert status == 0 and "[2/5] something ... papermill noise\n" in capsys.readouterr().out


def test_user_errors_are_one_line(tmp_path, capsys):
    log = str(tmp_path / "s.log")
    assert main(["step", "--label", "x", "--log", log, "--"]) == 2
    assert main(["step", "--label", "x", "--log", log, "--", str(tmp_path / "nothing-here")]) == 2
    assert main(["step", "--label", "x", "--log", log, "--show", "(", "--", PY, "-c", "1"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 3 and all(line.startswith("densenet-interp step: error:") for line in lines)


BARS = (
    "import sys, time\n"
    "for k in (1, 2):\n"
    "    sys.stderr.write(f'\\rphantom MURA:  {50 * k}%|##   | {k}/2 [00:0{k}<00:01, 1.00study/s]'); sys.stderr.flush()\n"
    "sys.stderr.write('\\n'); sys.stderr.flush()\n"
    "print('epoch 1/2  loss 0.7  ETA 0m10s', flush=True)\n"
    "sys.stderr.write('\\rdecode cache (64 px): 100%|#####| 9/9 [00:01<00:00, 9.00image/s]\\n'); sys.stderr.flush()\n"
)


def _screen(written: str) -> list[str]:
    """What a terminal shows after ``written``: ``\\r`` goes back, erase-to-end clears the rest of the line."""
    lines, line, cursor = [], [], 0
    for char in written.replace("\x1b[K", "\x00"):
        if char == "\n":
            lines.append("".join(line))
            line, cursor = [], 0
        elif char == "\r":
            cursor = 0
        elif char == "\x00":
            del line[cursor:]
        else:
            line[cursor : cursor + 1] = [char]
            cursor += 1
    return lines + (["".join(line)] if line else [])


def test_progress_bars_are_drawn_in_place_on_a_terminal_and_leave_no_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    status, log = _step(tmp_path, BARS)
    written = capsys.readouterr().out
    assert status == 0
    assert written.startswith("[2/5] something ... phantom MURA:  50%|")  # drawn after the label ...
    assert "\r[2/5] something ... phantom MURA:  100%|" in written  # ... and redrawn in place
    assert "\n    decode cache (64 px): 100%|" in written  # after a shown line: on the next line
    screen = _screen(written)
    assert screen[0] == "[2/5] something ... epoch 1/2  loss 0.7  ETA 0m10s"  # the bar gave way to the epoch
    assert screen[1].startswith("[2/5] something done in ") and len(screen) == 2  # no bar is left
    assert "phantom MURA:  50%|" in log.read_text()  # every update is in the log


def test_a_bar_is_cut_to_the_terminal_width_so_it_never_wraps(tmp_path, capsys, monkeypatch):
    import os
    import shutil

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *_: os.terminal_size((40, 24)))
    status, _ = _step(tmp_path, BARS)
    written = capsys.readouterr().out
    assert status == 0
    drawn = [part for line in written.split("\n") for part in line.split("\r") if "%|" in part]
    assert drawn and all(len(part.replace("\x1b[K", "")) <= 39 for part in drawn), drawn


def test_progress_bars_stay_off_a_console_that_is_not_a_terminal(tmp_path, capsys):
    status, log = _step(tmp_path, BARS)
    out = capsys.readouterr().out
    assert status == 0 and "%|" not in out and "\r" not in out
    assert out.splitlines()[0] == "[2/5] something ... epoch 1/2  loss 0.7  ETA 0m10s"
    assert "decode cache (64 px): 100%|" in log.read_text()


def test_the_step_recognises_the_bars_that_progress_draws(capsys, monkeypatch):
    import re

    from densenet_interp import progress

    monkeypatch.setenv("DENSENET_INTERP_PROGRESS", "1")
    assert list(progress.progress(range(5), total=5, what="decode cache (64 px)")) == list(range(5))
    drawn = [text for text in capsys.readouterr().err.replace("\r", "\n").splitlines() if text.strip()]
    assert drawn and all(re.search(progress.PATTERN, text) for text in drawn), drawn
    assert drawn[-1].startswith("decode cache (64 px): 100%|") and "5/5 [" in drawn[-1]
    monkeypatch.setenv("DENSENET_INTERP_PROGRESS", "0")  # off: the items, and nothing drawn
    assert list(progress.progress(iter("abc"), total=None, what="x")) == ["a", "b", "c"]
    assert capsys.readouterr().err == ""
