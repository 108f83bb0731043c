"""Hardening at the boundaries (issue 14): secrets, bad settings, sizes the database refuses, user text in
Markdown, stored models, file permissions and offline plot downloads.

Real parts throughout: worker processes, MariaDB (`mariadb_url`), Streamlit's AppTest and headless Chromium.
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
import zipfile
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sqlalchemy.engine import make_url

from helpers import demo_data, tiny_space, wait_until
from mat_interp_core import cli, dataset, network, projects, storage, synthetic, workers
from mat_interp_core.config import ConfigError, check_database_url, mask_url

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "streamlit_app.py")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    """The usual umask, so a file created without an explicit mode would be world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


# ---------------------------------------------------------------- 1. the URL never on a command line


def test_local_workers_get_the_url_from_their_environment(mariadb_url, umask_022, tmp_path, monkeypatch):
    """`ps` shows no password: the worker's command line has no URL, and the worker still finds the database."""
    home = tmp_path / "home"
    monkeypatch.setenv("MAT_INTERP_HOME", str(home))
    monkeypatch.delenv("MAT_INTERP_DATABASE_URL", raising=False)
    password = make_url(mariadb_url).password
    projects.create_project(mariadb_url, "envurl", demo_data(), space=tiny_space(epochs=5, min_resource=5),
                            n_trials=1)
    procs = workers.launch_local(projects.open_project(mariadb_url, "envurl"), 1)
    try:
        cmdline = Path(f"/proc/{procs[0].pid}/cmdline").read_bytes().decode().split("\0")
        assert password not in " ".join(cmdline) and "--database" not in cmdline, cmdline
        assert procs[0].wait(timeout=180) == 0
    finally:
        workers.stop_local(procs)
    assert projects.progress(projects.open_project(mariadb_url, "envurl"))["done"]  # it reached the database through its environment
    logs = list((home / "logs").iterdir())
    assert _mode(home) == 0o700 and _mode(home / "logs") == 0o700
    assert logs and all(_mode(p) == 0o600 for p in logs), [(p.name, oct(_mode(p))) for p in logs]
    assert all(password not in p.read_text() for p in logs)


SECRET = "S3cr3t"


@pytest.mark.parametrize("url", [
    f"mysql+pymysql://u:{SECRET}/x@127.0.0.1:1/db",
    f"mysql+pymysql://u:{SECRET}#x@db:3306/d",
    f"mysql+pymysql://u:{SECRET}?x@db/d",
    f"mysql+pymysql://u:{SECRET}@x@db/d",
    f"mysql+pymysql://u@db/d?charset=utf8mb4&password={SECRET}",
    f"mysql+pymysql://u:{SECRET}@db:port/d",  # unparsable: everything between // and @ hidden
    f"mysql+pymysql://u:{SECRET}@db:port/d?passwd={SECRET}",
])
def test_mask_url_hides_every_password(url):
    masked = mask_url(url)
    assert SECRET not in masked and "***" in masked, masked
    assert masked.startswith("mysql+pymysql://") and "db" in masked


def test_mask_url_keeps_urls_without_secrets():
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert mask_url("mysql+pymysql://u:p@h:3306/d?charset=utf8mb4") == "mysql+pymysql://u:***@h:3306/d?charset=utf8mb4"


def test_entrypoint_never_puts_the_url_on_the_command_line():
    text = (ROOT / "docker" / "entrypoint.sh").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert '--database "$MAT_INTERP_DATABASE_URL"' not in code and "MAT_INTERP_DATABASE_URL" in code


# ---------------------------------------------------------------- 2. bad settings: one sentence, nothing stored


BAD_URLS = [
    (f"mysql+pymysql://u:{SECRET}@127.0.0.1:abc/db", "port that is not a number"),
    (f"mysql+nodriver://u:{SECRET}@127.0.0.1/db", "unknown or not installed"),
    (f"foo://u:{SECRET}@127.0.0.1/db", "unknown or not installed"),
    (f"mysql+pymysql://u:{SECRET}@127.0.0.1/db?charset=klingon", "charset 'klingon'"),
    (f"mysql+pymysql://u:{SECRET}@127.0.0.1/db?connect_timeout=soon", "option the driver cannot use"),
    (f"mysql+pymysql://u:{SECRET}@127.0.0.1:70000/db", "outside 1-65535"),
    ("not a url at all", "not a URL SQLAlchemy can read"),
]


@pytest.mark.parametrize("url,expected", BAD_URLS)
def test_bad_database_urls_are_one_sentence_with_status_2(url, expected, capsys, monkeypatch):
    assert cli.main(["projects", "--database", url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the database URL") and "(--database)" in err and expected in err, err
    assert len(err.splitlines()) == 1 and SECRET not in err and "Traceback" not in err
    monkeypatch.setenv("MAT_INTERP_DATABASE_URL", url)  # the same from the environment
    assert cli.main(["status", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "(MAT_INTERP_DATABASE_URL)" in err and expected in err and SECRET not in err, err
    with pytest.raises(ConfigError):
        storage.get_engine(url)  # the library refuses it too, before any engine exists


def test_good_urls_pass_the_check():
    for url in ("sqlite:////tmp/x.db", "sqlite://", "mysql+pymysql://u:p%40x@db:3306/d?charset=utf8mb4",
                "mariadb+pymysql://u:p@db/d"):
        assert check_database_url(url) == url


def test_default_workers_use_every_core_within_the_memory(monkeypatch):
    from mat_interp_core import config

    monkeypatch.delenv("MAT_INTERP_WORKERS", raising=False)
    monkeypatch.setattr(config.os, "cpu_count", lambda: 8)
    pages = {"SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(config.os, "sysconf", lambda name: pages[name])
    for gib, expected in ((64, 8), (5, 4), (1, 1)):  # a GiB per worker beyond the first
        pages["SC_PHYS_PAGES"] = gib * 2**30 // 4096
        assert config.get_settings().default_workers == expected, gib
    monkeypatch.setenv("MAT_INTERP_WORKERS", "3")
    assert config.get_settings().default_workers == 3
    monkeypatch.setenv("MAT_INTERP_WORKERS", "0")
    with pytest.raises(ConfigError, match="MAT_INTERP_WORKERS"):
        config.get_settings()


def test_app_sidebar_names_a_bad_url(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MAT_INTERP_DATABASE_URL", f"mysql+pymysql://lab:{SECRET}@127.0.0.1:abc/db")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    sidebar = [str(e.value) for e in at.sidebar.error]
    assert any("port that is not a number" in e for e in sidebar), sidebar
    assert all(SECRET not in str(e.value) for e in at.error)


def test_train_checks_every_setting_before_storing(sqlite_url, tmp_path, capsys):
    csv = tmp_path / "demo.csv"
    synthetic.demo_frame().to_csv(csv, index=False)
    new = ["train", "p1", "--csv", str(csv), "--x1", "T (K)", "--x2", "H (Oe)", "--y", "moment (emu)",
           "--database", sqlite_url]
    assert cli.main([*new, "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert projects.list_projects(sqlite_url) == []  # the name is not taken
    projects.create_project(sqlite_url, "p2", demo_data(), space=tiny_space(), n_trials=3)
    assert cli.main(["train", "p2", "--more", "5", "--workers", "0", "--database", sqlite_url]) == 2
    assert projects.open_project(sqlite_url, "p2").n_trials == 3  # --more was not applied


# ---------------------------------------------------------------- 3. data the database cannot take in one statement


def _big_frame(n_x1: int) -> pd.DataFrame:
    t = np.linspace(2.0, 300.0, n_x1)
    rows = [(ti, h, 1e-3 * np.tanh(h / 1e4) / (1 + ti / 50) + 1e-9 * k)
            for k, h in enumerate((100.0, 1000.0, 10000.0, 50000.0)) for ti in t]
    return pd.DataFrame(rows, columns=["T (K)", "H (Oe)", "moment (emu)"])


def test_data_over_max_allowed_packet_is_refused_before_writing(mariadb, mariadb_url, tmp_path, capsys):
    """MariaDB at max_allowed_packet = 1 MiB: a ~1.3 MB CSV is refused with one sentence, nothing is stored;
    with the server's own value it is stored."""
    csv = tmp_path / "big.csv"
    _big_frame(8000).to_csv(csv, index=False)
    argv = ["train", "big", "--csv", str(csv), "--x1", "T (K)", "--x2", "H (Oe)", "--y", "moment (emu)",
            "--trials", "1", "--database", mariadb_url]
    data = dataset.validate(pd.read_csv(csv), "T (K)", "H (Oe)", "moment (emu)")
    assert 2**20 // 2 < len(data.to_csv_bytes()) < 2 * 2**20
    saved = int(mariadb.get_global("max_allowed_packet"))
    storage.dispose_all()
    try:
        mariadb.set_global("max_allowed_packet", 2**20)
        assert cli.main(argv) == 2
    finally:
        mariadb.set_global("max_allowed_packet", saved)
        storage.dispose_all()  # pooled connections keep the session value they started with
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "max_allowed_packet" in err and "'big'" in err, err
    assert projects.list_projects(mariadb_url) == []
    assert optuna.get_all_study_names(storage.optuna_storage(mariadb_url)) == []
    assert int(mariadb.get_global("max_allowed_packet")) == saved
    project = projects.create_project(mariadb_url, "big", data, space=tiny_space(), n_trials=1)
    assert len((project).data.frame) == len(data.frame)


# ---------------------------------------------------------------- 4. user text: Markdown escaped, lengths bounded


def test_column_names_longer_than_the_schema_are_refused(mariadb_url):
    frame = synthetic.demo_frame()
    longest = "T" * dataset.MAX_NAME_CHARS
    ok = frame.rename(columns={"T (K)": longest})
    project = projects.create_project(mariadb_url, "long", dataset.validate(ok, longest, "H (Oe)", "moment (emu)"),
                                      space=tiny_space(), n_trials=1)
    assert projects.open_project(mariadb_url, "long").x1_name == longest == project.x1_name
    too_long = longest + "K"
    bad = frame.rename(columns={"T (K)": too_long})
    with pytest.raises(dataset.DataError, match=r"the X1 column 'T+…' has a name of 256 characters"):
        dataset.validate(bad, too_long, "H (Oe)", "moment (emu)")


EVIL = {"T (K)": "T [a](https://evil.example/x)", "H (Oe)": "H ![i](https://evil.example/i.png)",
        "moment (emu)": "M <b>bold</b> $x$ www.evil.example"}
_UNESCAPED = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(|(?<!\\)<b>|(?<!\\)\$x|www\.|https://")


def _evil_csv() -> bytes:
    return synthetic.demo_frame().rename(columns=EVIL).to_csv(index=False).encode()


def test_column_names_are_escaped_wherever_markdown_renders(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MAT_INTERP_DATABASE_URL", f"sqlite:///{tmp_path}/app.db")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.file_uploader(key="upload").set_value(("evil [x](https://evil.example).csv", _evil_csv(), "text/csv")).run()
    at.selectbox(key="w_x1").set_value(EVIL["T (K)"])
    at.selectbox(key="w_x2").set_value(EVIL["H (Oe)"])
    at.selectbox(key="w_y").set_value(EVIL["moment (emu)"]).run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.session_state["training_data"].x2_name == EVIL["H (Oe)"]
    shown = [str(e.value) for kind in ("markdown", "caption", "success", "info", "warning", "error", "subheader")
             for e in at.get(kind)]
    shown += [w.label for kind in ("text_input", "multiselect", "checkbox", "selectbox") for w in at.get(kind)]
    assert any("evil.example" in s for s in shown)  # the names are shown ...
    assert not [s for s in shown if _UNESCAPED.search(s)]  # ... as text
    at.switch_page("views/train.py").run()
    captions = [str(c.value) for c in at.caption]
    assert any("X1 = T \\[a\\](https:\u200b//evil.example/x)" in c for c in captions), captions


def test_markdown_in_column_names_is_text_in_the_browser(start_server, browser_page, tmp_path):
    """Real rendering: no link or image from a column name reaches the page; the names read as typed."""
    from playwright.sync_api import expect

    from browser import no_exception, wait_idle

    server = start_server()
    page = browser_page
    page.goto(server.url)
    csv = tmp_path / "evil.csv"
    csv.write_bytes(_evil_csv())
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(csv))
    expect(page.get_by_text("Ready: 800 points", exact=False)).to_be_visible()
    wait_idle(page)
    no_exception(page)
    expect(page.locator("a[href*='evil.example']")).to_have_count(0)
    expect(page.locator("img[src*='evil.example']")).to_have_count(0)
    expect(page.locator("[data-testid='stMarkdownContainer'] b")).to_have_count(0)
    expect(page.get_by_text(f"values of {EVIL['H (Oe)']}", exact=False).first).to_be_visible()


# ---------------------------------------------------------------- 5. stored models


def test_stored_models_are_bounded_and_loaded_in_safe_mode():
    import keras

    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    assert network.model_from_bytes(network.model_to_bytes(model)).count_params() == model.count_params()

    lam = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Lambda(lambda x: x * 2.0)])
    blob = network.model_to_bytes(lam)
    keras.config.enable_unsafe_deserialization()  # even when some code turned safe mode off globally
    try:
        with pytest.raises(network.ModelError, match="Python code"):
            network.model_from_bytes(blob)
    finally:
        from keras.src.backend.common import global_state

        global_state.set_global_attribute("safe_mode_saving", None)  # Keras' own default: no process-wide setting
    with pytest.raises(network.ModelError, match="Python code"):
        network.model_from_bytes(blob)

    with pytest.raises(network.ModelError, match="more than the 64 MB"):
        network.model_from_bytes(b"PK" + b"\0" * (network.MAX_MODEL_BYTES + 1))
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.weights.h5", b"\0" * (network.MAX_MODEL_BYTES + 1))
    assert len(bomb.getvalue()) < 2**20
    with pytest.raises(network.ModelError, match="unpacks to"):
        network.model_from_bytes(bomb.getvalue())
    with pytest.raises(network.ModelError, match="not a .keras archive"):
        network.model_from_bytes(b"no zip")


# ---------------------------------------------------------------- 6. files for the owner only, offline plots


def test_new_database_and_exports_are_readable_by_their_owner_only(tmp_path, umask_022, capsys):
    url = f"sqlite:///{tmp_path}/new/dir/mi.db"
    storage.init_database(url)
    folder = tmp_path / "new" / "dir"
    assert _mode(tmp_path / "new") == 0o700 and _mode(folder) == 0o700
    files = [p for p in folder.iterdir() if p.name.startswith("mi.db")]
    assert {p.name for p in files} >= {"mi.db", "mi.db-wal"}
    assert all(_mode(p) == 0o600 for p in files), [(p.name, oct(_mode(p))) for p in files]
    out = tmp_path / "demo.csv"
    assert cli.main(["demo", "--out", str(out)]) == 0
    assert _mode(out) == 0o600 and len(pd.read_csv(out)) == len(synthetic.demo_frame())


def test_html_plot_downloads_embed_plotly():
    from streamlit.testing.v1 import AppTest

    def script():
        import sys

        import plotly.graph_objects as go
        import streamlit as st
        from streamlit.runtime import Runtime

        sys.path.insert(0, st.session_state["app_dir"])
        import figures

        figures.download_html(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])), "Plot (HTML)", "plot.html", key="dl")
        st.session_state["media"] = Runtime.instance().media_file_mgr

    at = AppTest.from_function(script, default_timeout=60)
    at.session_state["app_dir"] = str(ROOT / "app")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    file_id = at.get("download_button")[0].proto.url.rsplit("/", 1)[1].split(".")[0]
    page = at.session_state["media"].read_file(file_id).content.decode()
    assert not re.search(r"<script[^>]*\ssrc=", page)  # no script fetched from a network (the CDN before)
    assert len(page) > 1_000_000 and "Plotly" in page  # plotly.js itself is in the file
