"""The Streamlit app, page by page, with Streamlit's AppTest (no browser).

One temporary SQLite database serves the whole module. Two tiny projects are
started from the Train page with real worker processes at the beginning (the
second while the first runs); the tests that need trained models wait for
them with a deadline, so the data-page tests run while the workers train.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from mat_interp_core import cli, entropy, grids, models, projects, refine, report, simulate, synthetic, uncertainty, validation, workers
from mat_interp_core.dataset import read_table, validate
from mat_interp_core.space import SearchSpace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_csv_cases import CASES, CORPUS_DIR  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "streamlit_app.py")
TIMEOUT = 120  # seconds per AppTest run (the first model load imports TensorFlow)
TRAIN_DEADLINE = 300  # seconds for the tiny studies to finish

PROJECT_A = "demo-a"  # 2 trials, pruning from epoch 5
PROJECT_B = "demo-b"  # 2 trials, no pruning (two stored models: an ensemble)


# ------------------------------------------------------------------ helpers


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def sidebar_text(at: AppTest) -> str:
    return " ".join(str(m.value) for m in [*at.sidebar.markdown, *at.sidebar.caption])


def charts(at: AppTest) -> list:
    return list(at.get("plotly_chart"))


def figure(chart) -> dict:
    """The plotly figure (data + layout) behind an st.plotly_chart element."""
    return json.loads(chart.proto.spec)


def downloads(at: AppTest) -> list[str]:
    return [d.label for d in at.get("download_button")]


def load_demo(at: AppTest) -> AppTest:
    at.button(key="use_demo").click().run()
    assert_no_exception(at)
    assert at.session_state["training_data"] is not None
    return at


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader(key="upload").set_value((name, content, "text/csv")).run()
    assert_no_exception(at)
    return at


def set_tiny_space(at: AppTest, name: str, trials: int, min_resource: int) -> None:
    at.text_input(key="w_name").set_value(name)
    at.number_input(key="w_trials").set_value(trials)
    at.number_input(key="w_workers").set_value(1)
    at.number_input(key="w_epochs").set_value(20)
    at.slider(key="w_layers").set_value((2, 2))
    at.slider(key="w_nodes").set_value((8, 16))
    at.number_input(key="w_min_resource").set_value(min_resource)
    at.number_input(key="w_seed").set_value(7)
    at.run()
    assert_no_exception(at)
    assert not at.error, texts(at.error)


def wait_done(url: str, names: list[str], deadline_s: float = TRAIN_DEADLINE) -> dict[str, dict]:
    deadline = time.monotonic() + deadline_s
    while True:
        status = {n: projects.progress(projects.open_project(url, n)) for n in names}
        if all(p["done"] for p in status.values()):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"studies not finished after {deadline_s} s: {status}")
        time.sleep(0.5)  # polling interval, not a synchronisation


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def app_env(tmp_path_factory: pytest.TempPathFactory):
    """A temporary SQLite database and home folder for the whole module."""
    base = tmp_path_factory.mktemp("app")
    url = f"sqlite:///{base / 'app.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MAT_INTERP_DATABASE_URL", url)
        mp.setenv("MAT_INTERP_HOME", str(base / "home"))
        mp.setenv("MAT_INTERP_LOCAL_WORKERS", "1")
        mp.setenv("MAT_INTERP_MAX_UPLOAD_MB", "200")
        mp.setenv("MAT_INTERP_WORKERS", "1")  # these tests count the workers the pages start
        yield url


@pytest.fixture(scope="module")
def started(app_env):
    """Two tiny projects started from the Train page; the second while the first one trains."""
    at = load_demo(new_app())
    at.switch_page("views/train.py").run()
    set_tiny_space(at, PROJECT_A, trials=2, min_resource=5)
    at.button(key="start").click().run()
    assert_no_exception(at)
    a_procs = list(at.session_state["workers_started"])
    a_alive = [p.poll() is None for p in a_procs]
    set_tiny_space(at, PROJECT_B, trials=2, min_resource=50)  # min_resource > epochs: never pruned
    at.button(key="start").click().run()
    assert_no_exception(at)
    info = {"at": at, "a_alive_at_b_start": a_alive, "success": texts(at.success)}
    try:
        yield info
    finally:
        alive = [p for p in at.session_state["workers_started"] if p.poll() is None]
        if alive:
            workers.stop_local(alive, timeout=30)


@pytest.fixture(scope="module")
def finished(started, app_env):
    """The two projects, trained to their targets and finished (refined) by their first worker, which then exits."""
    started["status"] = wait_done(app_env, [PROJECT_A, PROJECT_B])
    for proc in started["at"].session_state["workers_started"]:
        proc.wait(timeout=TRAIN_DEADLINE)
    return started


@pytest.fixture
def fresh_db(monkeypatch, tmp_path):
    """A separate empty database for one test."""
    url = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("MAT_INTERP_DATABASE_URL", url)
    return url


# ------------------------------------------------------------------ Train (starts the shared studies)


def test_train_page_starts_a_second_project_while_the_first_runs(started, app_env):
    at = started["at"]
    assert started["a_alive_at_b_start"] == [True], "the first project's worker had already exited"
    assert any(f"Project {PROJECT_B} created; 1 local worker started" in s for s in started["success"])
    assert at.session_state["project"] == PROJECT_B
    assert len(at.session_state["workers_started"]) == 2
    names = [p.name for p in projects.list_projects(app_env)]
    assert names == [PROJECT_A, PROJECT_B]
    b = projects.open_project(app_env, PROJECT_B)
    assert b.space.epochs == 20 and b.space.layers == (2, 2) and b.space.nodes == (8, 16)
    assert b.space.seed == 7 and b.n_trials == 2
    assert b.units["magnetisation"] is True and b.units["mass_mg"] == synthetic.DEMO_MASS_MG
    assert (b.units["x1"], b.units["x2"], b.units["y"]) == ("K", "Oe", "emu")
    # The form is ready for a third project: a fresh default name, no error.
    assert at.text_input(key="w_name").value not in (PROJECT_A, PROJECT_B)
    assert not at.error


def test_train_page_without_data_points_to_the_data_page(app_env):
    at = new_app().switch_page("views/train.py").run()
    assert_no_exception(at)
    assert any("Load and check data on the Data page first" in t for t in texts(at.info))
    assert "start" not in [b.key for b in at.button]


def test_train_page_rejects_bad_names_and_settings(app_env):
    at = load_demo(new_app()).switch_page("views/train.py").run()
    at.text_input(key="w_name").set_value("bad name!").run()
    assert any("project name 'bad name!' is not allowed" in e for e in texts(at.error))
    assert at.button(key="start").disabled

    at.text_input(key="w_name").set_value("lr-backwards")
    at.number_input(key="w_lr_lo").set_value(1e-2)
    at.number_input(key="w_lr_hi").set_value(1e-3)
    at.run()
    assert not at.button(key="start").disabled
    at.button(key="start").click().run()
    assert_no_exception(at)
    assert any("lr range" in e for e in texts(at.error)), texts(at.error)

    at.number_input(key="w_lr_hi").set_value(1e-1)
    at.multiselect(key="w_solvers").set_value([])
    at.run()
    at.button(key="start").click().run()
    assert any("solver must be among" in e for e in texts(at.error)), texts(at.error)
    assert "lr-backwards" not in [p.name for p in projects.list_projects(app_env)]


def test_train_page_without_local_workers_leaves_the_work_to_the_service(fresh_db, monkeypatch):
    monkeypatch.setenv("MAT_INTERP_LOCAL_WORKERS", "0")
    at = load_demo(new_app()).switch_page("views/train.py").run()
    assert at.number_input(key="w_workers").disabled
    at.text_input(key="w_name").set_value("service-run").run()
    at.button(key="start").click().run()
    assert_no_exception(at)
    assert any("the worker service will run it" in s for s in texts(at.success))
    assert "workers_started" not in at.session_state
    assert projects.open_project(fresh_db, "service-run").n_trials == 30

    # Stop, then continue by 0 more trials: the stop flag is cleared, still no local process.
    at.button(key="stop").click().run()
    assert any("Stop requested for service-run" in s for s in texts(at.success))
    assert projects.progress(projects.open_project(fresh_db, "service-run"))["stop_requested"] is True
    at.number_input(key="w_more").set_value(5).run()
    at.button(key="continue").click().run()
    assert_no_exception(at)
    assert any("continues to 35 trials; the worker service" in s for s in texts(at.success))
    p = projects.open_project(fresh_db, "service-run")
    assert p.n_trials == 35 and p.stop_requested is False
    assert "workers_started" not in at.session_state


# ------------------------------------------------------------------ Data


def test_data_page_starts_empty(app_env):
    at = new_app()
    assert_no_exception(at)
    assert at.title[0].value == "Data"
    assert any("No data yet" in t for t in texts(at.info))
    sidebar = sidebar_text(at)
    assert "— none —" in sidebar and app_env.split("///")[1] in sidebar


def test_data_page_reads_an_uploaded_csv(app_env):
    at = upload(new_app(), "demo.csv", synthetic.demo_csv_bytes())
    assert not at.error, texts(at.error)
    assert at.selectbox(key="w_x1").value == "T (K)"
    assert at.selectbox(key="w_x2").value == "H (Oe)"
    assert at.selectbox(key="w_y").value == "moment (emu)"
    assert at.multiselect(key="w_x2_values").value == [100.0, 1000.0, 5000.0, 1e4, 2e4, 3e4, 4e4, 5e4]
    assert [at.text_input(key=k).value for k in ("w_unit_x1", "w_unit_x2", "w_unit_y")] == ["K", "Oe", "emu"]
    assert at.checkbox(key="w_mag").value is True
    assert (at.selectbox(key="w_m_unit").value, at.selectbox(key="w_h_unit").value) == ("emu", "Oe")
    # An uploaded file (not the demo) comes without a mass: the page asks for it.
    assert at.number_input(key="w_mass").value is None
    assert any("enter the sample mass" in w for w in texts(at.warning))
    assert any("Ready: 800 points on 8 values of H (Oe)" in s for s in texts(at.success))
    assert len(charts(at)) == 2  # Y vs X1 and the heatmap
    data = at.session_state["training_data"]
    assert len(data.frame) == 800 and data.x1_name == "T (K)"
    assert at.session_state["units"]["m_unit"] == "emu" and at.session_state["units"]["mass_mg"] is None

    # Train on fewer curves, then on none: a readable error instead of data.
    at.multiselect(key="w_x2_values").set_value([100.0, 1e4, 5e4]).run()
    assert any("Ready: 300 points on 3 values" in s for s in texts(at.success))
    assert len(at.session_state["training_data"].x2_values) == 3
    at.multiselect(key="w_x2_values").set_value([]).run()
    assert any("no X2 values were requested" in e for e in texts(at.error))
    assert "training_data" not in at.session_state

    # The same column twice.
    at.multiselect(key="w_x2_values").set_value([100.0, 5e4])
    at.selectbox(key="w_y").set_value("T (K)").run()
    assert_no_exception(at)
    assert any("X1 and Y are both column 'T (K)'" in e for e in texts(at.error))


def test_data_page_keeps_its_choices_across_pages(app_env):
    at = load_demo(new_app())
    at.text_input(key="w_unit_x2").set_value("kOe")
    at.number_input(key="w_mass").set_value(2.25)
    at.run()
    at.switch_page("views/projects.py").run()
    at.switch_page("views/data.py").run()
    assert_no_exception(at)
    assert at.text_input(key="w_unit_x2").value == "kOe"
    assert at.number_input(key="w_mass").value == 2.25
    assert at.session_state["units"]["mass_mg"] == 2.25


def test_data_page_explains_every_malformed_file(app_env):
    """The shared corpus of broken CSVs: each gives its clear message (or is accepted)."""
    at = new_app()
    for filename, x1, x2, y, expected in CASES:
        at = upload(at, filename, (CORPUS_DIR / filename).read_bytes())
        where = f"{filename} ({x1}, {x2}, {y})"
        if x1 is not None:
            options = at.selectbox(key="w_x1").options
            if y not in options:  # the GUI cannot even pick a missing column
                assert expected and "is not in the file" in expected, where
                continue
            at.selectbox(key="w_x1").set_value(x1)
            at.selectbox(key="w_x2").set_value(x2)
            at.selectbox(key="w_y").set_value(y)
            at.run()
            assert_no_exception(at)
        errors = texts(at.error)
        if expected is None:
            assert not errors, f"{where}: {errors}"
            assert len(at.session_state["training_data"].frame) >= 20, where
        else:
            assert any(expected in e for e in errors), f"{where}: expected {expected!r}, got {errors}"
            assert "training_data" not in at.session_state, where


def test_data_page_drops_invalid_rows_on_request(app_env):
    at = upload(new_app(), "nan_cells.csv", (CORPUS_DIR / "nan_cells.csv").read_bytes())
    assert any("has 2 empty or NaN cells" in e for e in texts(at.error))
    at.checkbox(key="w_drop").check().run()
    assert not at.error
    assert any("2 invalid rows dropped" in s for s in texts(at.success))
    assert at.session_state["training_data"].n_dropped == 2


def test_data_page_refuses_a_file_over_the_size_limit(app_env, monkeypatch):
    monkeypatch.setenv("MAT_INTERP_MAX_UPLOAD_MB", "0.01")
    at = upload(new_app(), "demo.csv", synthetic.demo_csv_bytes())
    assert any("over the limit of 0.01 MB" in e and "MAT_INTERP_MAX_UPLOAD_MB" in e for e in texts(at.error))
    assert "training_data" not in at.session_state


# ------------------------------------------------------------------ Monitor


def test_monitor_shows_the_finished_study(finished, app_env):
    at = finished["at"]
    at.switch_page("views/monitor.py").run()
    assert_no_exception(at)
    at.selectbox(key="w_monitor_project").set_value(PROJECT_A).run()
    status = finished["status"][PROJECT_A]
    assert status["finished"] == 2
    assert any(f"Finished: 2 of 2 trials ({status['complete']} complete, {status['pruned']} pruned, 0 failed)" in s
               for s in texts(at.success)), texts(at.success)
    bar = at.get("progress")[0]
    assert bar.value == 100 and bar.text.startswith("2 / 2 trials finished")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Best R² of the search"] == f"{status['best_value']:.6f}"
    assert metrics["Best trial"] == f"#{status['best_trial']}" and metrics["ETA"] == "done"
    assert at.dataframe[0].value["trial"].tolist() == [0, 1]
    (chart,) = charts(at)
    fig = figure(chart)
    curves = projects.curves_frame(projects.open_project(app_env, PROJECT_A))
    # An automatic R² range by default, from the data: every complete trial's latest R² up to the best one.
    assert at.checkbox(key="w_auto_range").value
    lo, hi = fig["layout"]["yaxis"]["range"]
    latest = curves.sort_values("epoch").groupby("trial").tail(1)
    assert lo < latest.loc[latest["state"] == "COMPLETE", "r2"].min() and hi > curves["r2"].max()
    assert len(fig["data"]) == curves["trial"].nunique() == 2
    for trace in fig["data"]:  # pruned trials dashed, the best one drawn thick
        if "pruned" in trace["name"]:
            assert trace["line"]["dash"] == "dash"
        if trace["name"].endswith("(best)"):
            assert trace["line"]["width"] == 3 and trace["name"].startswith(f"#{status['best_trial']} ")
    assert at.number_input(key="w_r2_lo").value == 0.99 and at.number_input(key="w_r2_hi").value == 1.0
    # The manual range is kept as an option; a reversed range is refused, the automatic range drops it.
    at.checkbox(key="w_auto_range").uncheck().run()
    assert figure(charts(at)[0])["layout"]["yaxis"]["range"] == [0.99, 1.0]
    at.number_input(key="w_r2_lo").set_value(1.0).run()
    assert any("needs 'from' below 'to'" in e for e in texts(at.error))
    at.checkbox(key="w_auto_range").check().run()
    assert not at.error and figure(charts(at)[0])["layout"]["yaxis"]["range"] == [lo, hi]
    assert at.dataframe[0].proto.placeholder == "—"  # missing values (a running trial's R²) as a dash, not None
    assert at.session_state["project"] == PROJECT_A


def test_monitor_runs_the_steps_after_the_search_no_worker_ran(app_env):
    """Trained by a worker without --finish (e.g. the compose service): a button starts a local worker that refines
    and validates it (the web server itself never trains)."""
    space = SearchSpace(layers=(1, 1), nodes=(8, 12), solvers=("adam",), epochs=15, min_resource=1000,
                        keep_models=2, seed=3, objective="holdout", refine_epochs=10)
    projects.create_project(app_env, "holdout-demo", validate(synthetic.demo_frame(), "T (K)", "H (Oe)",
                                                              "moment (emu)"), space=space, n_trials=2)
    assert workers.run_worker(app_env, "holdout-demo", exit_when_idle=True, threads=1, poll_seconds=0.1) == 2
    at = new_app()
    at.session_state["project"] = "holdout-demo"
    at.switch_page("views/monitor.py").run()
    assert_no_exception(at)
    info = " ".join(texts(at.info))
    assert "Refinement: 0 of 2 done. Held-out validation: 0 of 2 done." in info, info
    at.button(key="finish").click().run()
    assert_no_exception(at)
    assert any("A local worker started the steps after the search of holdout-demo" in t for t in texts(at.success))
    procs = at.session_state["workers_started"]
    assert len(procs) == 1 and procs[0].pid != os.getpid()
    procs[0].wait(timeout=TRAIN_DEADLINE)
    at.run()
    assert refine.refine_status(projects.open_project(app_env, "holdout-demo")) == (2, 2)
    assert validation.validation_status(projects.open_project(app_env, "holdout-demo")) == (2, 2)
    captions = " ".join(str(c.value) for c in at.caption)
    assert "Refinement: done (2 of 2)." in captions and "Held-out validation: done (2 of 2)." in captions
    assert at.dataframe[0].value["holdout_rmse"].notna().sum() == 2
    assert "finish" not in [b.key for b in at.button]


def test_monitor_reports_an_unavailable_database_and_recovers(app_env, monkeypatch, tmp_path):
    blocker = tmp_path / "db-folder"
    blocker.write_text("a file where the database folder should be")
    monkeypatch.setenv("MAT_INTERP_DATABASE_URL", f"sqlite:///{blocker}/x.db")
    at = new_app().switch_page("views/monitor.py").run()
    assert_no_exception(at)
    assert any(e.startswith("database unavailable: ") and "retrying" in e for e in texts(at.error)), texts(at.error)
    blocker.unlink()  # the database comes back: the next refresh recovers by itself
    at.run()
    assert_no_exception(at)
    assert not at.error
    assert any("no projects in this database yet" in t for t in texts(at.info))


def test_pages_survive_an_unreachable_database_server(app_env, monkeypatch, free_port):
    url = f"mysql+pymysql://lab:s3cret@127.0.0.1:{free_port()}/mat_interp"
    monkeypatch.setenv("MAT_INTERP_DATABASE_URL", url)
    at = new_app()
    sidebar = sidebar_text(at)
    assert "lab:***@127.0.0.1" in sidebar and "s3cret" not in sidebar
    for page in ("views/projects.py", "views/train.py", "views/monitor.py", "views/results.py"):
        at.switch_page(page).run()
        assert_no_exception(at)
        assert any(e.startswith("database unavailable: ") for e in texts(at.error)), (page, texts(at.error))
        assert all("s3cret" not in e for e in texts(at.error))


# ------------------------------------------------------------------ Results


def test_results_page_shows_the_fit(finished, app_env):
    at = finished["at"]
    at.switch_page("views/results.py").run()
    at.selectbox(key="w_results_project").set_value(PROJECT_A).run()
    assert_no_exception(at)
    best = models.ranked(projects.open_project(app_env, PROJECT_A))[0]  # by the refined model's R²
    assert refine.refined_trials(projects.open_project(app_env, PROJECT_A))
    # by default the same model set as the CLI and the other pages, described the same way
    described = simulate.model_set(projects.open_project(app_env, PROJECT_A))[1]
    assert str(best) in described and any(f"Model: {described};" in str(m.value) for m in at.markdown)
    assert len(charts(at)) == 3  # fit over data, residuals, fitted surface
    assert downloads(at) == ["Download fitted values and residuals (CSV)", "Download the best model (.keras)"]


def test_results_page_ensemble_of_two(finished, app_env):
    at = finished["at"]
    at.switch_page("views/results.py").run()
    at.selectbox(key="w_results_project").set_value(PROJECT_B).run()
    at.number_input(key="w_results_k").set_value(2).run()
    assert_no_exception(at)
    assert any(re.search(r"Model: ensemble of 2 (refined )?models \(trials \d+, \d+\)", str(m.value)) for m in at.markdown)
    assert any(t.get("fill") == "tonexty" for t in figure(charts(at)[0])["data"])  # the ± std band


# ------------------------------------------------------------------ Simulate and Entropy


def test_simulate_then_entropy(finished, app_env):
    at = finished["at"]
    at.switch_page("views/simulate.py").run()
    at.selectbox(key="w_sim_project").set_value(PROJECT_A).run()
    assert_no_exception(at)
    # Defaults from the training data: X1 step 1/5 of the measured spacing, X2 step 1/5 of the smallest gap.
    assert at.text_input(key="w_sim_x2").value == "100:50000:100"
    x1_text = at.text_input(key="w_sim_x1").value
    lo, hi, step = (float(v) for v in x1_text.split(":"))
    assert 4.9 < lo < 5.1 and 87.4 < hi < 87.6 and 0.1 < step < 0.25
    assert any("Set the axes and press Simulate" in t for t in texts(at.info))

    at.text_input(key="w_sim_x1").set_value("50:10:1").run()
    assert any("STOP (10) is below START (50)" in e for e in texts(at.error))
    assert at.button(key="simulate").disabled

    at.text_input(key="w_sim_x1").set_value("5:87:0.5").run()
    at.button(key="simulate").click().run()
    assert_no_exception(at)
    assert not at.error, texts(at.error)
    sim = at.session_state["simulation"]
    # The project's model set answers: an ensemble when the pruner left more than one complete trial.
    ensemble = isinstance(simulate.model_set(projects.open_project(app_env, PROJECT_A))[0], simulate.Ensemble)
    assert sim["project"] == PROJECT_A and sim["frame"].shape == (165 * 500, 3 + ensemble)
    assert any("Simulated 82,500 points (165 × 500)" in s for s in texts(at.success))
    assert len(charts(at)) == 3 + ensemble  # two line cuts and the map (and the ensemble's spread map)
    assert downloads(at) == ["Download the simulated grid (CSV)"]

    at.switch_page("views/entropy.py").run()
    assert_no_exception(at)
    assert at.selectbox(key="w_entropy_project").value == PROJECT_A
    assert at.number_input(key="w_e_mass").value == synthetic.DEMO_MASS_MG
    assert at.text_input(key="w_e_dh").value == "1, 2, 3, 4, 5"
    assert not at.error, texts(at.error)
    # Its own grid, not the Simulate page's 0.5 K × 100 Oe one: 0.1 K (1/5 of 0.5 K) × 0.02 T.
    assert (at.number_input(key="w_e_t_step").value, at.number_input(key="w_e_h_step").value) == (0.1, 0.02)
    assert any("(ΔT = 0.1 K, μ0ΔH = 0.02 T)" in str(c.value) for c in at.caption), [c.value for c in at.caption]
    merits = at.dataframe[0].value
    assert merits.shape[0] == 10 and set(merits["dH_T"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert set(merits["source"]) == {"answer (simulated grid)", "coarse data (measured fields only)"}
    assert (merits["peak_J_per_kgK"] > 0).all()
    assert not any("is coarse for" in w for w in texts(at.warning))  # 0.02 T against 0.1 K: no comb expected
    assert downloads(at) == ["|ΔS_M| curves (CSV)", "Figures of merit (CSV)", "Plot entropy (HTML)"]
    assert any("camera icon" in str(c.value) for c in at.caption)

    at.checkbox(key="w_e_bl_linear").check().run()
    assert_no_exception(at)
    merits = at.dataframe[0].value
    assert "linear interpolation along H" in set(merits["source"]) and merits.shape[0] == 15
    assert len(charts(at)) == 2
    assert "Plot entropy-compare (HTML)" in downloads(at)


def test_entropy_page_and_cli_give_one_answer(finished, app_env, tmp_path):
    """The Entropy page and `mat-interp entropy` with their defaults: the same models, grid and figures."""
    at = new_app()
    at.session_state["project"] = PROJECT_A
    at.switch_page("views/entropy.py").run()
    assert_no_exception(at)
    page = at.dataframe[0].value
    page = page[page["source"] == report.NETWORK].set_index("dH_T")
    out = tmp_path / "e.csv"
    assert cli.main(["entropy", PROJECT_A, "--dh", "1,2,3,4,5", "--database", app_env, "--out", str(out)]) == 0
    cli_figures = entropy.figures_of_merit(pd.read_csv(out, comment="#")).set_index("dH_T")
    assert list(cli_figures.index) == list(page.index) == [1.0, 2.0, 3.0, 4.0, 5.0]
    np.testing.assert_allclose(cli_figures["peak_J_per_kgK"], page["peak_J_per_kgK"], rtol=1e-6)
    np.testing.assert_allclose(cli_figures["T_peak_K"], page["T_peak_K"], atol=1e-9)
    described = simulate.model_set(projects.open_project(app_env, PROJECT_A))[1]
    assert any(described in str(c.value) for c in at.caption)


def test_simulate_an_ensemble_shows_its_spread(finished, app_env):
    at = finished["at"]
    at.switch_page("views/simulate.py").run()
    at.selectbox(key="w_sim_project").set_value(PROJECT_B).run()
    at.text_input(key="w_sim_x1").set_value("5:87:1")
    at.text_input(key="w_sim_x2").set_value("100:50000:500")
    at.number_input(key="w_sim_k").set_value(2)
    at.run()
    at.button(key="simulate").click().run()
    assert_no_exception(at)
    frame = at.session_state["simulation"]["frame"]
    assert "moment (emu) std" in frame and (frame["moment (emu) std"] > 0).any()
    assert len(charts(at)) == 4  # two cuts, the map and the spread map


def plotted(values) -> np.ndarray:
    """A trace's x or y as numbers (plotly sends long arrays as base64 'bdata')."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    return np.asarray(values, dtype=float)


def test_simulate_overlay_keeps_each_measured_curve_at_its_own_field(finished, app_env):
    """A grid off the measured fields: each measured curve drawn at its own H (never snapped to a grid line),
    legends with units, and a warning that the grid leaves the measured range."""
    at = new_app()
    at.session_state["project"] = PROJECT_A
    at.switch_page("views/simulate.py").run()
    at.text_input(key="w_sim_x1").set_value("5:87:1")
    at.text_input(key="w_sim_x2").set_value("0:60000:3000").run()
    assert any("grid leaves the measured range: H (Oe) 0 … 60000 leaves the measured 100 … 50000" in w
               for w in texts(at.warning)), texts(at.warning)
    at.button(key="simulate").click().run()
    assert_no_exception(at)
    data = projects.open_project(app_env, PROJECT_A).data.frame
    overlaid = {}
    for trace in figure(charts(at)[0])["data"]:  # moment vs T at the cuts, with the measured data
        found = re.fullmatch(r"H \(Oe\) = (\S+) \(measured\)", trace.get("name", ""))
        if found:
            overlaid[float(found.group(1))] = trace
        elif trace.get("name"):
            assert trace["name"].startswith("H (Oe) = ")  # the legend names the field with its unit
    assert set(overlaid) == set(data["H (Oe)"].unique())  # 100, 1000, 5000, …: none of them on the grid
    for h, trace in overlaid.items():
        part = data[data["H (Oe)"] == h]
        assert sorted(plotted(trace["x"])) == pytest.approx(sorted(part["T (K)"]))
        assert sorted(plotted(trace["y"])) == pytest.approx(sorted(part["moment (emu)"]))


def test_simulate_page_and_cli_share_the_default_grid_and_models(finished, app_env, tmp_path, capsys):
    project = projects.open_project(app_env, PROJECT_B)
    at = new_app()
    at.session_state["project"] = PROJECT_B
    at.switch_page("views/simulate.py").run()
    assert at.number_input(key="w_sim_k").value == simulate.default_k(project)
    x1, x2 = at.text_input(key="w_sim_x1").value, at.text_input(key="w_sim_x2").value
    assert (x1, x2) == grids.default_axes(project.data)
    assert not at.warning, texts(at.warning)  # the default grid stays inside the measured range
    at.button(key="simulate").click().run()
    assert_no_exception(at)
    described = simulate.model_set(project)[1]
    assert any(f"with {described}." in s for s in texts(at.success)), texts(at.success)
    out = tmp_path / "sim.csv"
    assert cli.main(["simulate", PROJECT_B, "--database", app_env, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"grid: --x1 {x1} --x2 {x2}" in printed and f"models: {described}" in printed
    page = at.session_state["simulation"]["frame"]
    np.testing.assert_allclose(pd.read_csv(out, comment="#").to_numpy(), page.to_numpy(), rtol=1e-6)


def test_monitor_shows_a_running_trial_from_its_first_epochs(finished, app_env, monkeypatch):
    real = projects.curves_frame

    def with_a_running_trial(project, **kwargs):
        first = pd.DataFrame({"trial": 99, "epoch": [1, 2, 3], "loss": [2.0, 1.0, 0.8], "r2": [-0.6, 0.1, 0.35],
                              "state": "RUNNING"})
        return pd.concat([real(project, **kwargs), first], ignore_index=True)

    monkeypatch.setattr(projects, "curves_frame", with_a_running_trial)
    at = new_app()
    at.session_state["project"] = PROJECT_A
    at.switch_page("views/monitor.py").run()
    assert_no_exception(at)
    fig = figure(charts(at)[0])
    lo, hi = fig["layout"]["yaxis"]["range"]
    finished_r2 = real(projects.open_project(app_env, PROJECT_A))["r2"].max()
    assert lo < 0.35 < hi and hi > finished_r2  # the running trial's current value and the finished ones show
    assert any(t["name"].startswith("#99 running") for t in fig["data"])


def test_entropy_page_grid_ensemble_band_and_coarse_step_warning(finished, app_env):
    at = new_app()
    at.session_state["project"] = PROJECT_B
    at.switch_page("views/entropy.py").run()  # no simulated grid needed: the page makes its own
    assert_no_exception(at)
    assert not at.error, texts(at.error)
    # the default ensemble: every kept model (the Train page's keep_models, 10); this project has only 2
    assert at.number_input(key="w_e_k").value == SearchSpace().keep_models == 10
    merits = at.dataframe[0].value.set_index("source")
    network = merits.loc["answer (simulated grid)"]
    if any(re.search(r"(?<!mean of the networks and )Arrott-plot interpolation along H \(the networks", str(c.value))
           for c in at.caption):
        assert "peak_std" not in network or network["peak_std"].isna().all()  # interpolations: no members
    else:
        assert (network["peak_std"] > 0).all()  # the members disagree a little: a spread
    assert "peak_std" not in merits or merits.loc["coarse data (measured fields only)"]["peak_std"].isna().all()
    # the band drawn is the held-out calibrated one when the finishing worker trained the folds, else it is marked
    # "not calibrated" and the members' spread is not drawn as if it were an error bar
    fig = figure(charts(at)[0])
    if uncertainty.calibration_status(projects.open_project(app_env, PROJECT_B)) == "":
        assert any(t.get("fill") == "tonexty" for t in fig["data"])
        assert "with its calibrated 90 % band" in fig["layout"]["title"]["text"]
        answer = merits.loc["answer (simulated grid)"]
        assert (answer["peak_band"] > 0).all() and (answer["peak_low"] < answer["peak_J_per_kgK"]).all()
        assert (answer["peak_J_per_kgK"] < answer["peak_high"]).all() and (answer["TEC_3K_J_per_kgK_low"]
                                                                         <= answer["TEC_3K_J_per_kgK_high"]).all()
        assert any("a nominal 90 % interval" in str(c.value) for c in at.caption)
    else:
        assert not any(t.get("fill") == "tonexty" for t in fig["data"])
        assert "band not calibrated" in fig["layout"]["title"]["text"]
        assert any("The band is not calibrated" in w for w in texts(at.warning))
        assert merits.loc["answer (simulated grid)"]["peak_band"].isna().all()
        assert any("No ranking without a calibrated band" in i for i in texts(at.info))
    assert any(re.search(r"from the ((mean of the networks and (RBF surface|Arrott-plot interpolation along H)|(mean of the RBF surface and )?Arrott-plot interpolation along H) \(the networks: )?ensemble of 2 (refined )?models \(trials \d+, \d+\)", str(c.value)) for c in at.caption)

    at.number_input(key="w_e_h_step").set_value(0.2).run()  # coarse fields against 0.1 K
    assert_no_exception(at)
    assert any("A field step of 0.2 T is coarse for a temperature step of 0.1 K" in w for w in texts(at.warning))
    assert any("μ0ΔH = 0.2 T" in str(c.value) for c in at.caption)
    at.number_input(key="w_e_t_step").set_value(0.5).run()
    assert not any("is coarse for" in w for w in texts(at.warning))

    at.number_input(key="w_e_k").set_value(1).run()
    merits = at.dataframe[0].value
    assert "peak_std" not in merits or merits["peak_std"].isna().all()


def test_entropy_page_reports_unit_and_field_errors(finished, app_env):
    at = new_app()
    at.session_state["project"] = PROJECT_A
    at.switch_page("views/entropy.py").run()
    at.number_input(key="w_e_mass").set_value(None).run()
    assert_no_exception(at)
    # the library's error names the setting; the page names its own field (the CLI its option)
    assert any("needs the sample mass" in e and "'Sample mass (mg)' field above" in e for e in texts(at.error)), \
        texts(at.error)
    at.number_input(key="w_e_mass").set_value(1.5)
    at.text_input(key="w_e_dh").set_value("1, 9").run()
    assert any("ΔH = 9 T is not available" in e for e in texts(at.error)), texts(at.error)
    at.text_input(key="w_e_dh").set_value("1, x").run()
    assert any("'x' is not a number" in e for e in texts(at.error)), texts(at.error)
    assert_no_exception(at)


def test_entropy_page_for_data_that_is_not_magnetisation(app_env):
    frame = synthetic.demo_frame().rename(columns={"moment (emu)": "R (ohm)"})
    data = validate(frame, "T (K)", "H (Oe)", "R (ohm)")
    projects.create_project(app_env, "resistance", data, space=SearchSpace(epochs=5), n_trials=1,
                            units={"x1": "K", "x2": "Oe", "y": "ohm", "magnetisation": False})
    at = new_app()
    at.session_state["project"] = "resistance"
    at.switch_page("views/entropy.py").run()
    assert_no_exception(at)
    assert any("was not marked as magnetisation" in t for t in texts(at.info))
    assert not at.get("download_button")
    at.checkbox(key="w_e_force").check().run()
    assert_no_exception(at)
    assert any("needs the sample mass" in e for e in texts(at.error)), texts(at.error)
    at.number_input(key="w_e_mass").set_value(1.5).run()
    assert any("has no finished trial with a model yet" in e for e in texts(at.error)), texts(at.error)


# ------------------------------------------------------------------ Projects


def test_projects_page_lists_opens_and_deletes(finished, app_env):
    data = validate(read_table(synthetic.demo_csv_bytes()), "T (K)", "H (Oe)", "moment (emu)")
    projects.create_project(app_env, "to-delete", data, space=SearchSpace(epochs=5), n_trials=3)
    at = new_app().switch_page("views/projects.py").run()
    assert_no_exception(at)
    table = at.dataframe[0].value
    assert {PROJECT_A, PROJECT_B, "to-delete"} <= set(table["project"])
    row = table.set_index("project").loc[PROJECT_A]
    assert row["points"] == 800 and row["finished"] == 2 and row["target"] == 2 and row["status"] == "done"
    # The best model's R² (the refined one's), the number the Results page shows under the same label.
    best = simulate.model_set(projects.open_project(app_env, PROJECT_A))[0]
    best = (getattr(best, "members", None) or [best])[0]
    assert row["best model R²"] == pytest.approx(best.value) and row["best model"] == f"trial {best.trial_number}"
    results = new_app()
    results.session_state["project"] = PROJECT_A
    results.switch_page("views/results.py").run()
    assert {m.label: m.value for m in results.metric}["best model R²"] == f"{row['best model R²']:.6f}"
    # The wide table fits the page: stretched, the project column pinned, missing values as a dash.
    proto = at.dataframe[0].proto
    assert proto.placeholder == "—" and json.loads(proto.columns)["project"]["pinned"]

    at.selectbox(key="w_projects_pick").set_value("to-delete").run()
    at.button(key="open").click().run()
    assert at.session_state["project"] == "to-delete"
    assert any("to-delete is the current project" in s for s in texts(at.success))
    assert "**Project:** to-delete" in sidebar_text(at)

    assert at.button(key="delete").disabled  # needs the confirmation first
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete").click().run()
    assert_no_exception(at)
    assert any("Deleted project to-delete" in s for s in texts(at.success))
    assert "to-delete" not in [p.name for p in projects.list_projects(app_env)]
    assert "project" not in at.session_state
    assert "to-delete" not in set(at.dataframe[0].value["project"])


def test_projects_page_when_there_are_none(fresh_db):
    at = new_app().switch_page("views/projects.py").run()
    assert_no_exception(at)
    assert any("There are no projects yet" in t for t in texts(at.info))


@pytest.mark.parametrize("page", ["views/results.py", "views/simulate.py", "views/entropy.py"])
def test_model_pages_without_projects_say_what_to_do(fresh_db, page):
    at = new_app().switch_page(page).run()
    assert_no_exception(at)
    assert any("no projects in this database yet" in t for t in texts(at.info))
