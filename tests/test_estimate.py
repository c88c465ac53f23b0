"""`densenet-interp estimate` and the stop `make reproduce PROFILE=paper` makes without GPU=1."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from densenet_interp.cli import main
from densenet_interp.commands.estimate import duration, training_images

ROOT = Path(__file__).resolve().parents[1]
STUDIES = [
    ("train", "XR_WRIST", "patient00001", "study1_positive", 3),
    ("train", "XR_WRIST", "patient00002", "study1_negative", 2),
    ("train", "XR_FINGER", "patient00003", "study1_positive", 4),
    ("train", "XR_ELBOW", "patient00004", "study1_negative", 1),
    ("valid", "XR_WRIST", "patient00005", "study1_positive", 2),
]


def test_the_estimate_is_the_measured_speed_times_the_four_trainings(tmp_path, write_small_mura, capsys):
    from densenet_interp.data.mura import read_mura

    mura = write_small_mura(tmp_path, STUDIES, images=False)
    counts = training_images(read_mura(mura))
    assert counts == {"all_pretrained": 10, "wrist_pretrained": 5, "wrist_random": 5, "finger_pretrained": 4}
    assert main(["estimate", "--profile", "tiny", "--mura-dir", str(mura), "--steps", "1"]) == 0
    out = capsys.readouterr().out
    rate = float(re.search(r"([\d.]+) training images/s measured", out).group(1))
    assert rate > 0 and "the CPU only" in out
    assert "x 2 epochs = 48 image passes" in out  # (10 + 5 + 5 + 4) images x the tiny profile's 2 epochs
    assert f"estimated training time: {duration(48 / rate)}" in out


def test_durations_read_as_days_hours_minutes():
    assert duration(59) == "0 min" and duration(61 * 60) == "1 h 1 min"
    assert duration(3 * 86400 + 5 * 3600 + 59) == "3 d 5 h"


def _plan(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    command = ["make", "--no-print-directory", "-n", "reproduce", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True).stdout


@pytest.mark.parametrize(
    ("args", "stops"),
    [
        (("PROFILE=paper", "MURA_DIR=/data/MURA-v1.1"), True),
        (("PROFILE=paper", "MURA_DIR=/data/MURA-v1.1", "GPU=1"), False),
        (("PROFILE=paper", "MURA_DIR=/data/MURA-v1.1", "CPU_OK=1"), False),
        (("PROFILE=tiny",), False),
    ],
)
def test_real_mura_on_the_cpu_stops_before_training_unless_asked(args, stops):
    plan = _plan(*args)
    guarded = "estimate --profile paper" in plan and "exit 2" in plan
    assert guarded == stops, plan[-2000:]
    if stops:  # the measurement and the stop come before any training notebook runs
        assert plan.index("exit 2") < plan.find("20_training") or "20_training" not in plan
