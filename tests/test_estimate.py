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


# ------------------------------------------------------------------------------ the real-MURA data check
def test_the_sample_check_counts_every_missing_image_and_names_an_undecodable_one(
    tmp_path, write_small_mura, capsys
):
    mura = write_small_mura(tmp_path, STUDIES)
    assert main(["stats", str(mura), "--sample", "5"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "all 12 listed images exist; the 5 sampled decode"

    missing = [mura / "train/XR_WRIST/patient00001/study1_positive/image2.png"]
    missing.append(mura / "valid/XR_WRIST/patient00005/study1_positive/image1.png")
    for path in missing:
        path.unlink()
    broken = mura / "train/XR_FINGER/patient00003/study1_positive/image1.png"
    broken.write_bytes(b"not a png")
    assert main(["stats", str(mura), "--sample", "100"]) == 1  # 100 > the 10 present: all of them decoded
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == (
        "2 of 12 listed images are missing and 1 of the 10 sampled do not decode"
    )
    errors = captured.err.splitlines()
    assert errors[:2] == [f"{path}: file not found" for path in missing] and len(errors) == 3
    assert errors[2].startswith(f"{broken}: ")

    assert main(["stats", str(mura), "--sample", "0"]) == 2  # one line, no traceback
    assert "--sample is 0" in capsys.readouterr().err


def _make(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    roots = [f"RESULTS_ROOT={tmp_path / 'results'}", f"DATA_ROOT={tmp_path / 'data'}"]
    command = ["make", "--no-print-directory", *args, "PROFILE=paper", *roots]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_make_checks_each_mura_folder_once_even_with_a_space_in_its_path(tmp_path, write_small_mura):
    good = write_small_mura(tmp_path / "my data", STUDIES)  # a space in the path
    first = _make("data", f"MURA_DIR={good}", tmp_path=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "all 12 listed images exist" in first.stdout
    assert _make("-q", "data", f"MURA_DIR={good}", tmp_path=tmp_path).returncode == 0  # checked: not redone

    other = write_small_mura(tmp_path / "other copy", STUDIES)  # another folder: checked again
    (other / "train/XR_ELBOW/patient00004/study1_negative/image1.png").unlink()
    assert _make("-q", "data", f"MURA_DIR={other}", tmp_path=tmp_path).returncode == 1
    second = _make("data", f"MURA_DIR={other}", tmp_path=tmp_path)
    assert second.returncode != 0 and "1 of 12 listed images are missing" in second.stdout
    assert "image1.png: file not found" in second.stderr and "Traceback" not in second.stderr

    (good / "valid_image_paths.csv").write_text(  # the index edited in place: checked again
        (good / "valid_image_paths.csv").read_text()
        + "MURA-v1.1/valid/XR_WRIST/patient00005/study1_positive/image9.png\n"
    )
    os.utime(good / "valid_image_paths.csv", (1, 1))
    assert _make("-q", "data", f"MURA_DIR={good}", tmp_path=tmp_path).returncode == 1


def test_paper_smoke_plans_the_paper_graph_on_a_generated_phantom(tmp_path):
    """PROFILE=paper-smoke is the paper's Make graph (no stand-in, no localisation, figures chosen from Table 1's
    predictions) with a generated phantom as MURA_DIR, and no CPU stop (it is meant for a CPU)."""
    roots = (f"RESULTS_ROOT={tmp_path}/results", f"DATA_ROOT={tmp_path}/data")
    smoke = _plan("PROFILE=paper-smoke", *roots)
    paper = _plan("PROFILE=paper", "MURA_DIR=/data/MURA-v1.1", "GPU=1", *roots)

    def steps(plan: str) -> list[str]:
        return re.findall(r'--label "\[\d+/(\d+)\] ([^"]*)"', plan)

    smoke_steps, paper_steps = steps(smoke), steps(paper)
    assert smoke_steps[0] == ("17", "generate the phantom MURA") and "estimate --profile" not in smoke
    assert smoke_steps[1:] == [
        (str(int(n) + 1), what) for n, what in paper_steps
    ]  # the paper's steps, one more
    assert "standin" not in smoke and "50_localisation" not in smoke
    assert (
        f'-p mura_dir "{tmp_path}/data/paper-smoke/phantom/MURA-v1.1"' in smoke
        and "-p profile paper-smoke" in smoke
    )
    assert smoke.index("30_evaluation") < smoke.index(
        "40_case_figure"
    )  # the rules read Table 1's predictions
    assert "-p pins ''" in smoke and "-p pins '5=x.png;'" in _plan(
        "PROFILE=paper-smoke", "FIGURE5_IMAGE=x.png"
    )
