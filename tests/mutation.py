"""`make mutants`: mutation testing of the modules that carry the paper's recipe and its measures.

A mutant is a copy of the code with one small change (``<`` for ``<=``, ``+ 1`` for ``- 1``, a constant
changed, a call argument dropped...). A test suite that lets a mutant pass cannot see that change. The tool is
mutmut (pinned in pyproject.toml), run over :data:`MODULES` with the unit tests of :data:`TESTS`; each mutant
runs only the tests that call the function it changes. Tests that train a model or run the pipeline
(markers ``trains``, ``slow``, ``e2e``) are left out: seconds each, for every mutant of the functions they
touch; the rules they would check are stated by the unit tests.

mutmut looks for code under ``src/``; the design keeps it under ``lib/``. So this script stages a copy:
``.mutants/src/densenet_interp`` (the package), ``.mutants/tests`` and a ``pyproject.toml`` with the mutmut
settings, and runs mutmut there (files are copied only when changed, so mutmut's own cache of finished mutants
survives between runs). Then it reads mutmut's results and judges them:

- **killed**: a test failed (or the mutant timed out: it never finished, which a test run notices);
- **survived**: every test passed. A survivor listed in ``tests/MUTANTS.md`` is *equivalent*: no input can
  tell it from the original (the file gives the reason for each). Any other survivor is a gap in the tests.

The score is ``killed / (all - equivalent)``. The run fails (exit 1) when the score is below
:data:`REQUIRED_SCORE`, or when ``tests/MUTANTS.md`` names a mutant that is no longer a survivor (a stale
entry). The messages of raised errors are not mutated (``raise`` statements, by
``do_not_mutate_patterns``): their wording is not the recipe, and the conditions that raise them are.

Usage: ``python tests/mutation.py [--max-children N] [--list]``; ``--list`` prints every non-equivalent
survivor's diff (``mutmut show``), the place to start writing a test.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".mutants"
PACKAGE = "densenet_interp"
REQUIRED_SCORE = 0.90
LEDGER = ROOT / "tests" / "MUTANTS.md"

MODULES = (
    "data/augment.py",  # the paper's augmentation: lateral flip, rotation up to 30 degrees
    "models/schedule.py",  # the learning-rate schedule, epoch selection, pruning of epoch weights
    "explain/maps.py",  # the CAM and the channel ranking of the activation panels
    "evaluate/metrics.py",  # accuracy, kappa, AUROC, sensitivity, specificity; Table 1
    "evaluate/stats.py",  # the patient bootstrap, intervals, paired differences, seeds pooling
    "evaluate/measures.py",  # the localisation shares, chance, enrichment, pointing game
)
TESTS = (
    "tests/test_pipeline.py",
    "tests/test_training.py",
    "tests/test_explain.py",
    "tests/test_figures.py",
    "tests/test_evaluation.py",
    "tests/test_localisation.py",
    "tests/test_seeds.py",
    "tests/test_stats.py",
)
NOT_MUTATED = (r"^\s*raise ",)  # the messages of raised errors (see the module docstring)
PYTEST_ARGS = ("-p", "no:cacheprovider", "-m", "not slow and not e2e and not trains", "-q")
KILLED = {1, 3, 36, -24, 24, 152, 255}  # a failing test; a timeout (SIGXCPU and mutmut's own)
SURVIVED = {0}


def _sync(source: Path, target: Path) -> None:
    """Copy ``source`` (a file or folder) to ``target``, leaving unchanged files untouched; remove extras."""
    if source.is_file():
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        return
    target.mkdir(parents=True, exist_ok=True)
    wanted = {
        p.name for p in source.iterdir() if p.name != "__pycache__" and not p.name.endswith(".egg-info")
    }
    for extra in {p.name for p in target.iterdir()} - wanted:
        shutil.rmtree(target / extra) if (target / extra).is_dir() else (target / extra).unlink()
    for name in wanted:
        _sync(source / name, target / name)


def _config() -> str:
    def toml_list(values) -> str:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"

    return "\n".join(
        [
            "# Written by tests/mutation.py (make mutants); edit that file, not this one.",
            "[tool.pytest.ini_options]",
            'testpaths = ["tests"]',
            'markers = ["slow: trains or executes notebooks", "e2e: the tiny pipeline", "trains: trains a model"]',
            'filterwarnings = ["ignore::DeprecationWarning"]',
            "",
            "[tool.mutmut]",
            'source_paths = ["src"]',
            # workers fork from a server that imported the tests but ran nothing: TensorFlow is not fork-safe
            # once it has run an op (its thread pools do not survive a fork), so forking from mutmut's own
            # process, which ran the suite, hangs the workers that run TensorFlow.
            'process_isolation = "forkserver"',
            f"only_mutate = {toml_list(f'src/{PACKAGE}/{m}' for m in MODULES)}",
            f"do_not_mutate_patterns = {toml_list(NOT_MUTATED)}",
            f"pytest_add_cli_args = {toml_list(PYTEST_ARGS)}",
            f"pytest_add_cli_args_test_selection = {toml_list(TESTS)}",
            "",
        ]
    )


def stage() -> None:
    _sync(ROOT / "lib" / PACKAGE, STAGE / "src" / PACKAGE)
    _sync(ROOT / "tests", STAGE / "tests")
    config = STAGE / "pyproject.toml"
    if not config.exists() or config.read_text() != _config():
        config.write_text(_config())


def results() -> dict[str, int | None]:
    """``{mutant name: exit code}`` from mutmut's ``.meta`` files (``None``: not run yet)."""
    codes: dict[str, int | None] = {}
    for module in MODULES:
        meta = STAGE / "mutants" / "src" / PACKAGE / f"{module}.meta"
        if not meta.exists():
            raise SystemExit(f"{meta}: no mutmut results for {module}; did `mutmut run` finish?")
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def _survivors() -> list[str]:
    try:
        return sorted(name for name, code in results().items() if code is not None and code not in KILLED)
    except SystemExit:  # an earlier run that did not finish: mutmut redoes what is missing
        return []


def equivalent() -> dict[str, str]:
    """``{mutant name: reason}`` from the ledger's table rows ``| `name` | reason |``."""
    rows = re.findall(r"^\|\s*`([^`]+__mutmut_\d+)`\s*\|\s*(.+?)\s*\|\s*$", LEDGER.read_text(), re.MULTILINE)
    return dict(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--list", action="store_true", help="show the diff of every non-equivalent survivor")
    parser.add_argument("--no-run", action="store_true", help="judge the last run's results without running")
    args = parser.parse_args(argv)

    stage()
    mutmut = Path(sys.executable).with_name("mutmut")
    if not args.no_run:
        command = [str(mutmut), "run", "--max-children", str(args.max_children)]
        # mutmut keeps the verdicts of earlier runs; survivors are tried again, since tests may have been added
        earlier = _survivors() if (STAGE / "mutants").exists() else []
        for names in ([], earlier) if earlier else ([],):
            run = subprocess.run(command + names, cwd=STAGE)
            if run.returncode != 0:
                print(f"mutmut run failed (exit {run.returncode}); see its output above", file=sys.stderr)
                return 1
    codes = results()
    ledger = equivalent()
    killed = sorted(k for k, c in codes.items() if c in KILLED)
    survived = sorted(k for k, c in codes.items() if c not in KILLED)
    listed = [k for k in survived if k in ledger]
    gaps = [k for k in survived if k not in ledger]
    stale = sorted(k for k in ledger if k not in survived)
    judged = len(codes) - len(listed)
    score = len(killed) / judged if judged else 1.0

    print(
        f"\nmutants: {len(codes)} in {len(MODULES)} modules; killed {len(killed)}; survived {len(survived)}"
    )
    print(f"  equivalent (listed in {LEDGER.relative_to(ROOT)}): {len(listed)}; not killed: {len(gaps)}")
    print(f"  score: {len(killed)} / {judged} = {score:.1%} (required: {REQUIRED_SCORE:.0%})")
    for name in gaps:
        status = {0: "survived", 33: "no tests", 5: "no tests"}.get(codes[name], f"exit {codes[name]}")
        print(f"  not killed ({status}): {name}")
        if args.list:
            subprocess.run([str(mutmut), "show", name], cwd=STAGE)
    for name in stale:
        print(f"  stale ledger entry (no longer a survivor): {name}")
    return 0 if score >= REQUIRED_SCORE and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
