"""The environment is declared twice (pyproject.toml for pip, environment.yml for conda): they must agree."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return set(project["dependencies"]) | set(extras["cpu"]) | set(extras["dev"])


def _conda_pip_section() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml should have exactly one pip: section"
    return pip_sections[0]


def _conda_pip_pins() -> set[str]:
    return {line for line in _conda_pip_section() if not line.startswith("-")}


def test_environment_yml_pins_match_pyproject():
    assert _conda_pip_pins() == _pyproject_pins()


def test_environment_yml_is_the_whole_environment_the_tests_run_in():
    """The conda spec is complete: the lock as constraints and the package itself, and every version it pins
    (directly or through the lock) is the version installed in the environment these tests run in."""
    from importlib import metadata

    options = [line for line in _conda_pip_section() if line.startswith("-")]
    assert options == ["-c requirements.lock", "-e ."]
    assert (
        metadata.version("densenet-interp")
        == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    )
    pins = [line.split(";")[0].strip() for line in _conda_pip_pins() if "!= 'linux'" not in line]
    pins += [
        line
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    wrong = []
    for pin in pins:
        name, version = pin.split("==")
        try:
            installed = metadata.version(name.split("[")[0])
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong.append(f"{name}: pinned {version}, installed {installed}")
    assert wrong == []


def test_every_direct_dependency_is_pinned_exactly():
    for requirement in _pyproject_pins():
        spec = requirement.split(";")[0]
        assert "==" in spec, f"{requirement!r} is not pinned with =="


def test_lock_agrees_with_direct_pins():
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    for requirement in _pyproject_pins():
        spec, _, marker = requirement.partition(";")
        if marker and "== 'linux'" not in marker:
            continue  # pins for other platforms are not in the Linux lock
        name, version = spec.strip().split("==")
        name = name.split("[")[0].lower()
        assert lock.get(name) == version, (
            f"requirements.lock has {name}=={lock.get(name)}, pyproject {version}"
        )


def test_python_version_matches():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]


def test_license_file_matches_pyproject():
    license_name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert license_name == "MIT" and text.startswith("MIT License")
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_citation_names_this_software_and_the_paper_without_inventing_authors():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    paper = citation["references"][0]
    title = "Making DenseNet Interpretable: a case study in clinical radiology"
    assert paper["title"] == title and title in (ROOT / "README.md").read_text()
    assert paper["authors"] == [{"name": "Anonymous authors"}]  # double-blind submission: no invented names
    assert "venue" not in paper and "year" not in paper


def test_every_committed_figure_and_table_names_its_data():
    """The committed results (the README shows them) each carry the data label: phantom MURA, profile mini."""
    from labels_support import unlabelled_files

    results = Path(__file__).resolve().parents[1] / "results" / "mini"
    assert len(list((results / "figures").glob("*.png"))) >= 12
    assert unlabelled_files(results, "mini") == []


def test_the_mutants_ledger_names_only_mutants_of_the_tested_modules_each_with_a_reason():
    """tests/MUTANTS.md: every survivor judged equivalent is a mutant of a module `make mutants` mutates, listed
    once, with its reason (tests/mutation.py reads this table; a wrong row would silently raise the score)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutation", ROOT / "tests" / "mutation.py")
    mutation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mutation)
    ledger = mutation.equivalent()
    rows = [line for line in (ROOT / "tests" / "MUTANTS.md").read_text().splitlines() if "__mutmut_" in line]
    assert len(rows) == len(ledger) > 0  # no row lost to a malformed line, no duplicates
    modules = {"densenet_interp." + m.removesuffix(".py").replace("/", ".") for m in mutation.MODULES}
    for name, reason in ledger.items():
        assert name.split(".x_")[0] in modules, name
        assert len(reason) > 20 and "as above" not in reason, name
