"""``densenet-interp compare`` (the check of ``make verify-results``): identical folders pass, any difference in
a committed table is named with its first differing line, and files only the new run has are not failures."""

from __future__ import annotations

from densenet_interp.cli import main


def _results(root, tables: dict[str, str], predictions: dict[str, str] | None = None):
    for folder, files in (("tables", tables), ("predictions", predictions or {})):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (root / folder / name).write_text(text)
    return root


def test_identical_folders_exit_0(tmp_path, capsys):
    tables = {"table1.csv": "model_set,accuracy\nall,0.765\n", "claims.csv": "claim,verdict\na,supported\n"}
    expected, made = (
        _results(tmp_path / "a", tables),
        _results(tmp_path / "b", tables, {"all.csv": "p\n0.5\n"}),
    )
    assert main(["compare", str(expected), str(made)]) == 0
    out = capsys.readouterr().out
    assert "2 file(s) identical, 0 differ" in out and "1 more only in" in out


def test_a_changed_digit_is_named_with_its_line(tmp_path, capsys):
    expected = _results(tmp_path / "a", {"table1.csv": "model_set,accuracy\nall,0.765\nwrist,0.758\n"})
    made = _results(tmp_path / "b", {"table1.csv": "model_set,accuracy\nall,0.765\nwrist,0.759\n"})
    assert main(["compare", str(expected), str(made)]) == 1
    out = capsys.readouterr().out
    assert "tables/table1.csv: differs, line 3: 'wrist,0.758' vs 'wrist,0.759'" in out


def test_a_table_missing_from_the_new_run_fails(tmp_path, capsys):
    expected = _results(tmp_path / "a", {"table1.csv": "x\n1\n", "table2.csv": "y\n2\n"})
    made = _results(tmp_path / "b", {"table1.csv": "x\n1\n"})
    assert main(["compare", str(expected), str(made)]) == 1
    assert "tables/table2.csv: missing from" in capsys.readouterr().out


def test_bad_folders_are_one_line(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nowhere"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere: folder not found" in err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), str(tmp_path)]) == 2
    assert "no file matches" in capsys.readouterr().err


def test_excluded_tables_are_not_compared_but_the_rest_still_is(tmp_path, capsys):
    """verify-results does not rerun `make seeds`: its tables are excluded, nothing else is."""
    expected = _results(tmp_path / "a", {"table1.csv": "x\n1\n", "table1_seeds.csv": "y\n2\n"})
    made = _results(tmp_path / "b", {"table1.csv": "x\n1\n"})
    assert main(["compare", str(expected), str(made), "--exclude", "tables/*_seeds.csv"]) == 0
    changed = _results(tmp_path / "c", {"table1.csv": "x\n9\n"})
    assert main(["compare", str(expected), str(changed), "--exclude", "tables/*_seeds.csv"]) == 1
    assert "tables/table1.csv: differs" in capsys.readouterr().out
