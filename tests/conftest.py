"""Shared fixtures: a real MariaDB server, isolated databases, SQLite, the paper's data.

Fixtures
--------
mariadb            (session)  a running `MariaDBServer` (tests/mariadb.py) on 127.0.0.1
mariadb_url        (function) URL of a fresh empty MariaDB database with its own user
sqlite_url         (function) sqlite:///<tmp_path>/mi.db
shared_data        (session)  Path of ../shared/data (skips when absent)
section31_csv      (session)  Path of ../shared/data/traindata_Section3_1.csv
free_port          (function) a callable returning a free TCP port on 127.0.0.1
repo_root          (session)  Path of the repository root

An autouse session fixture sets TF_CPP_MIN_LOG_LEVEL=3 and points MAT_INTERP_HOME
at a session temp folder, so no test touches ~/.mat_interp.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/mariadb.py, tests/browser.py importable

pytest_plugins = ["browser"]  # the streamlit server and Chromium page fixtures (tests/browser.py)

from mariadb import MariaDBServer, free_port as _free_port, mariadbd_path  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


# ---------------------------------------------------------------- environment
@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TF quiet and MAT_INTERP_HOME in a temp folder for the whole session."""
    home = tmp_path_factory.mktemp("mat_interp_home")
    saved = {k: os.environ.get(k) for k in ("TF_CPP_MIN_LOG_LEVEL", "MAT_INTERP_HOME")}
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["MAT_INTERP_HOME"] = str(home)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def free_port() -> Callable[[], int]:
    """`free_port()` -> a TCP port that is free on 127.0.0.1 right now."""
    return _free_port


# ------------------------------------------------------------------- MariaDB
@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """One real MariaDB server for the session, stopped (by its PID) at the end.

    Skips only when mariadbd is not installed and we are not in CI; in CI
    (CI=true) a missing server is an error.
    """
    if mariadbd_path() is None:
        message = "mariadbd is not installed (scripts/test.sh installs Debian's mariadb-server)"
        if _in_ci():
            pytest.fail(message + " -- required in CI", pytrace=False)
        pytest.skip(message)
    # Short base path: the unix socket path must stay under ~100 characters.
    base = tmp_path_factory.mktemp("mdb", numbered=True)
    if len(str(base)) > 80:
        base = None  # fall back to a short mkdtemp folder
    server = MariaDBServer(base)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


_db_counter = 0


@pytest.fixture
def mariadb_url(mariadb: MariaDBServer, request: pytest.FixtureRequest) -> str:
    """URL of a fresh empty database (and a user with rights on it only)."""
    global _db_counter
    _db_counter += 1
    stem = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40]
    return mariadb.new_database(f"t{_db_counter}_{stem}")


# -------------------------------------------------------------------- SQLite
@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mi.db"


# ---------------------------------------------------------- the paper's data
@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (the paper's training sets); never part of the repository."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def section31_csv(shared_data: Path) -> Path:
    path = shared_data / "traindata_Section3_1.csv"
    if not path.is_file():
        pytest.skip(f"{path.name} not present in ../shared/data")
    return path


# ------------------------------------------------------------------- markers
_MARKER_FIXTURES = {
    "mariadb": {"mariadb", "mariadb_url"},
    "browser": {"browser_page", "start_server"},
}


# The longest files first, so that with `-n 2 --dist loadfile` (scripts/test.sh's default) neither process is left
# with a long file at the end while the other idles. Order by each file's total time in CI.
LONGEST_FIRST = ("test_walkthrough", "test_study", "test_faults", "test_image", "test_science_cli", "test_app",
                 "test_suggest", "test_browser", "test_speed_stop", "test_refine", "test_family")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the MariaDB / browser fixtures get the matching marker,
    so `-m "not mariadb"` and `-m browser` select them without hand-tagging;
    and with pytest-xdist the longest files are moved to the front (stable otherwise)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _MARKER_FIXTURES.items():
            if names & fixtures and marker not in item.keywords:
                item.add_marker(getattr(pytest.mark, marker))
    if getattr(config.option, "numprocesses", None):  # only with pytest-xdist: one process keeps the file order
        rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(Path(str(item.fspath)).stem, len(rank)))
