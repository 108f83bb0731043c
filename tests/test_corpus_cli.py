"""The malformed-CSV corpus (tests/bad_csv, tests/bad_csv_cases.py) through `mat-interp train`.

Every bad file must give exit status 2, one clear sentence on stderr, no
traceback, and leave the database untouched (no half-created project). A good
file must get past reading and validation: `--trials 0` is checked only after
the data, so a good file is rejected for the trial count instead.

The CLI runs in-process (`cli.main` + capsys): no TensorFlow start-up per case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bad_csv_cases import CASES, CORPUS_DIR, H, M, T
from mat_interp_core import cli, projects

BAD = [c for c in CASES if c[4] is not None]
GOOD = [c for c in CASES if c[4] is None]


def _case_id(case) -> str:
    filename, _, _, y, expected = case
    return filename if expected is None or y is None else f"{filename}[{y}]"


def _train(capsys, url: str, csv: Path, x1: str, x2: str, y: str, *extra: str) -> tuple[int, str, str]:
    code = cli.main(["train", "corpus", "--csv", str(csv), "--x1", x1, "--x2", x2, "--y", y,
                     "--workers", "1", "--database", url, *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "corpus.db"
    return f"sqlite:///{path}", path


def test_corpus_is_complete():
    """At least 20 rejected files, each case's file present, and no file left out of CASES."""
    assert len({c[0] for c in BAD}) >= 20
    listed = {c[0] for c in CASES}
    on_disk = {p.name for p in CORPUS_DIR.iterdir() if not p.name.startswith(".")}
    assert listed == on_disk, (listed ^ on_disk)


@pytest.mark.parametrize("case", BAD, ids=[_case_id(c) for c in BAD])
def test_bad_file_is_refused_cleanly(case, capsys, db):
    filename, x1, x2, y, expected = case
    url, path = db
    code, out, err = _train(capsys, url, CORPUS_DIR / filename, x1 or T, x2 or H, y or M, "--trials", "2")
    assert code == 2, (out, err)
    assert err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) <= 3, err  # a message, not a dump
    assert not path.exists(), "the database was touched before the data was valid"
    assert projects.list_projects(url) == []


@pytest.mark.parametrize("case", GOOD, ids=[_case_id(c) for c in GOOD])
def test_good_file_gets_past_validation(case, capsys, db):
    filename, x1, x2, y, _ = case
    url, path = db
    code, out, err = _train(capsys, url, CORPUS_DIR / filename, x1, x2, y, "--trials", "0")
    assert code == 2
    assert "--trials must be >= 1" in err, err  # the data itself was accepted
    assert "Traceback" not in err + out
    assert not path.exists()


def test_million_rows_over_the_upload_limit(capsys, db, tmp_path, monkeypatch):
    """10^6 rows: refused by size (MAT_INTERP_MAX_UPLOAD_MB) before parsing, named in the message."""
    n = 1_000_000
    t = np.tile(np.linspace(2.0, 300.0, 10_000), 100)
    h = np.repeat(np.arange(100) * 500.0, 10_000)
    csv = tmp_path / "million.csv"
    pd.DataFrame({T: t, H: h, M: np.round(1e-3 * t + 1e-6 * h, 9)}).to_csv(csv, index=False)
    assert sum(1 for _ in csv.open()) == n + 1
    monkeypatch.setenv("MAT_INTERP_MAX_UPLOAD_MB", "5")
    url, path = db
    code, out, err = _train(capsys, url, csv, T, H, M, "--trials", "2")
    assert code == 2 and "MAT_INTERP_MAX_UPLOAD_MB" in err, err
    assert "Traceback" not in err + out
    assert not path.exists()


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "/etc/passwd", "x" * 65, "sp ace", "semi;colon", ""])
def test_project_names_that_could_form_paths_or_sql_are_refused(name, capsys, db):
    url, path = db
    code = cli.main(["train", name, "--csv", str(CORPUS_DIR / "bom.csv"), "--x1", T, "--x2", H, "--y", M,
                     "--database", url])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err, err
    assert not path.exists()
