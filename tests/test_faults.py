"""Faults a lab server sees, with real worker processes and the session's real MariaDB server.

1. a service worker killed with SIGKILL mid-trial, its successor stopped with SIGTERM
2. the database server restarted while workers train
3. two projects trained at once by one pool of workers
4. three workers started at the same moment on an empty database
5. the app restarted while workers run
6. a model too large for the server's max_allowed_packet

Every wait polls the database or a log with a deadline (helpers.wait_until);
MAT_INTERP_HEARTBEAT=1 (helpers.env) makes stale trials visible after 4 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from helpers import REPO_ROOT, demo_data, env, tiny_space, wait_until
from mat_interp_core import dataset, projects, simulate, storage, workers
from test_deployment import (  # the compose file's parsing and the services' real commands
    APP_SCRIPT,
    COMPOSE,
    ENV_EXAMPLE,
    _command,
    _env_mapping,
    _interpolate_tree,
    _stop,
    _wait_health,
    parse_env_file,
    worker_service,
)


# ------------------------------------------------------------------ helpers
class Spawned:
    """Processes this test started; whatever is still running at teardown is killed (by PID)."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen] = []

    def worker(self, url: str, *names: str, log: str, exit_when_idle: bool = True) -> tuple[subprocess.Popen, Path]:
        """`python -m mat_interp_core worker [NAME] --database URL [--exit-when-idle] --threads 1`, output to a file."""
        path = self.tmp_path / log
        argv = [sys.executable, "-m", "mat_interp_core", "worker", *names, "--database", url, "--threads", "1"]
        if exit_when_idle:
            argv.append("--exit-when-idle")
        with open(path, "wb") as out:
            proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env(), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        return self.add(proc), path

    def service_worker(self, url: str, log: str) -> tuple[subprocess.Popen, Path]:
        proc, path = worker_service(url, self.tmp_path, log_name=log)
        return self.add(proc), path

    def add(self, proc: subprocess.Popen) -> subprocess.Popen:
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def spawn(tmp_path: Path):
    spawned = Spawned(tmp_path)
    try:
        yield spawned
    finally:
        spawned.cleanup()


def _table(url: str, name: str):
    return projects.trials_frame(projects.open_project(url, name))


def _states(url: str, name: str) -> list[str]:
    return list(_table(url, name).state)


def _running_with_curves(url: str, name: str) -> bool:
    """Some trial is RUNNING and has written curve rows (so it is mid-training)."""
    running = set(_table(url, name).query("state == 'RUNNING'").trial)
    if not running:
        return False
    curves = projects.curves_frame(projects.open_project(url, name))
    return bool(running & set(curves.trial))


def _early_in_a_trial(url: str, name: str, epochs: int, fraction: float = 0.5) -> bool:
    """Some RUNNING trial has recorded curves but is less than ``fraction`` through its epochs."""
    running = set(_table(url, name).query("state == 'RUNNING'").trial)
    curves = projects.curves_frame(projects.open_project(url, name))
    last = curves[curves.trial.isin(running)].groupby("trial").epoch.max()
    return bool(((last > 0) & (last < fraction * epochs)).any())


def _sigterm(proc: subprocess.Popen, timeout: float) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"process {proc.pid} did not exit within {timeout:.0f} s of SIGTERM")


def _wait_exit(proc: subprocess.Popen, log: Path, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker {proc.pid} still running after {timeout:.0f} s:\n{log.read_text()[-3000:]}")
    return log.read_text()


def _long_space(epochs: int = 1200):
    # a tiny net for many epochs: a few seconds per trial, so a fault lands mid-trial
    return tiny_space(epochs=epochs, patience=epochs, min_resource=100000, nodes=(8, 8))


def _assert_finished(url: str, name: str, target: int):
    """The study has its trials and nothing is left RUNNING; a WAITING trial may only be the
    queued retry of a failed one (the target can be reached before a retry is run)."""
    table = _table(url, name)
    shown = table[["trial", "state", "note"]]
    assert table.trial.is_unique
    assert "RUNNING" not in set(table.state), shown
    assert table.state.isin(["COMPLETE", "PRUNED"]).sum() >= target, shown
    waiting = [t for t in projects.open_project(url, name).study().get_trials(deepcopy=False) if t.state.name == "WAITING"]
    assert all("failed_trial" in t.system_attrs for t in waiting), shown
    return table


# ----------------------------------------------- 1. SIGKILL, with the service command
def test_service_worker_killed_mid_trial_and_its_successor_stopped_by_sigterm(mariadb_url, spawn):
    url = mariadb_url
    epochs = 3000
    projects.create_project(url, "kill", demo_data(), space=_long_space(epochs), n_trials=2)
    first, first_log = spawn.service_worker(url, "first.log")
    # kill early in trial 1 (less than a third through), so it cannot finish between this check and the kill
    wait_until(lambda: "COMPLETE" in _states(url, "kill") and _early_in_a_trial(url, "kill", epochs, 1 / 3),
               timeout=120, what="trial 0 complete and trial 1 early in its training")
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    table = _table(url, "kill").set_index("trial")
    assert table.loc[1, "state"] == "RUNNING"  # the killed trial, as the dead worker left it
    complete_before = set(table.index[table.state == "COMPLETE"])

    second, second_log = spawn.service_worker(url, "second.log")
    wait_until(lambda: projects.progress(projects.open_project(url, "kill"))["done"], timeout=120, what="the study to finish")
    table = _assert_finished(url, "kill", 2).set_index("trial")
    assert table.loc[1, "state"] == "FAIL"  # failed by the heartbeat check ...
    study = projects.open_project(url, "kill").study()
    retried = [t for t in study.get_trials(deepcopy=False) if t.system_attrs.get("failed_trial") == 1]
    assert retried and retried[0].state.name == "COMPLETE"  # ... and re-queued
    assert retried[0].params == study.trials[1].params  # the same configuration again (on SQLite: test_study.py)
    assert table.loc[1, "note"] == f"its worker stopped answering (no heartbeat); retried as trial {retried[0].number}"
    assert complete_before <= set(table.index[table.state == "COMPLETE"])

    # The service does not exit when idle: it serves a project queued later ...
    assert second.poll() is None, second_log.read_text()
    projects.create_project(url, "later", demo_data(), space=_long_space(20000), n_trials=3)
    wait_until(lambda: _running_with_curves(url, "later"), timeout=60, what="a trial of the later project")
    # ... and SIGTERM mid-trial ends the trial (FAIL, not RUNNING) and the worker, promptly, with 0.
    assert _sigterm(second, timeout=20) == 0, second_log.read_text()
    later = _table(url, "later")
    assert list(later.state) == ["FAIL"], later  # the 20000-epoch trial was stopped, not finished
    assert later.note.iloc[0].startswith("stopped by request at epoch "), later
    out = second_log.read_text()
    assert f"worker {second.pid} on" in out and f"worker {second.pid} ran" in out
    assert "Traceback" not in first_log.read_text()


# ------------------------------------------------------ 2. the database restarted
def test_database_restart_during_a_study(mariadb, mariadb_url, spawn):
    url = mariadb_url
    password = make_url(url).password
    epochs = 2500
    projects.create_project(url, "outage", demo_data(), space=_long_space(epochs), n_trials=3)
    w1, log1 = spawn.worker(url, log="w1.log")
    w2, log2 = spawn.worker(url, log="w2.log")
    # stop the server early in a trial, so the outage lands in the middle of it
    wait_until(lambda: "COMPLETE" in _states(url, "outage") and _early_in_a_trial(url, "outage", epochs),
               timeout=120, what="a complete trial and one early in its training")
    complete_before = set(_table(url, "outage").query("state == 'COMPLETE'").trial)
    try:
        mariadb.stop()
        # What the monitor reads: a clear, password-free "unavailable" error, not a driver traceback.
        with pytest.raises(storage.DatabaseUnavailable) as info:
            projects.progress(projects.open_project(url, "outage"))
        message = str(info.value)
        assert "unavailable" in message and ":***@" in message and password not in message
        assert isinstance(info.value, RuntimeError)
        # Both worker loops notice the outage (the one mid-trial when the trial's next write
        # fails), and stay alive waiting for the database.
        def both_noticed() -> bool:
            for proc, log in ((w1, log1), (w2, log2)):
                assert proc.poll() is None, f"worker exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            return all("mat_interp.worker: database unavailable" in log.read_text() for log in (log1, log2))

        wait_until(both_noticed, timeout=60, what="both worker loops to report the outage")
    finally:
        if not mariadb.running:
            mariadb.start()  # same data directory and port; other tests' databases are back too
    # The same calls recover by themselves (pool_pre_ping replaces the dead connections).
    assert projects.progress(projects.open_project(url, "outage"))["target"] == 3
    out1, out2 = _wait_exit(w1, log1, 150), _wait_exit(w2, log2, 150)
    assert w1.returncode == 0 and w2.returncode == 0, out1 + out2
    table = _assert_finished(url, "outage", 3)
    assert complete_before <= set(table.query("state == 'COMPLETE'").trial), "a finished trial was lost"
    assert "FAIL" in set(table.state), table  # the trials the outage interrupted; others replaced them
    for out in (out1, out2):
        assert "Exception in thread" not in out, out  # e.g. Optuna's heartbeat thread dying
    # A stored model belongs to a COMPLETE trial, or to one that trained and saved its model just
    # before the outage but whose end Optuna could not record: failed by the heartbeat check and
    # retried. (simulate uses COMPLETE trials only.)
    retried = {t.system_attrs["failed_trial"] for t in projects.open_project(url, "outage").study().get_trials(deepcopy=False)
               if "failed_trial" in t.system_attrs}
    models = _stored_models(url, projects.open_project(url, "outage").id)
    assert set(models) <= set(table.query("state == 'COMPLETE'").trial) | retried, (models, table)


# ------------------------------------------------ 3. two projects, one worker pool
def _stored_models(url: str, project_id: int) -> dict[int, tuple[float, float, float]]:
    m = storage.models
    with storage.get_engine(url).connect() as conn:
        rows = conn.execute(sa.select(m.c.trial_number, m.c.value, m.c.y_mean, m.c.y_std)
                            .where(m.c.project_id == project_id)).all()
    return {r.trial_number: (r.value, r.y_mean, r.y_std) for r in rows}


def test_two_projects_share_a_worker_pool_without_mixing(mariadb_url, spawn):
    url = mariadb_url
    base = demo_data().frame
    scaled = base.copy()
    scaled["moment (emu)"] *= 1000.0
    data = {
        "x1": dataset.validate(base, "T (K)", "H (Oe)", "moment (emu)"),
        "x1000": dataset.validate(scaled, "T (K)", "H (Oe)", "moment (emu)"),
    }
    targets = {"x1": 3, "x1000": 4}
    for name in data:
        projects.create_project(url, name, data[name], space=tiny_space(), n_trials=targets[name])
    pool = [spawn.worker(url, log=f"pool{i}.log") for i in range(2)]
    for proc, log in pool:
        out = _wait_exit(proc, log, 180)
        assert proc.returncode == 0, out

    y_max = float(base["moment (emu)"].abs().max())
    seen_workers = set()
    for name, scale in (("x1", 1.0), ("x1000", 1000.0)):
        project = projects.open_project(url, name)
        table = _assert_finished(url, name, targets[name])
        assert len(table) < targets[name] + 6, table  # no stray trials from the other project
        trials = {t.number: t for t in projects.open_project(url, name).study().get_trials(deepcopy=False)}
        seen_workers |= {t.user_attrs["worker"] for t in trials.values()}
        # curves: only this study's trials, and per trial exactly the epochs that trial trained
        curves = projects.curves_frame(projects.open_project(url, name))
        assert set(curves.trial) <= set(trials)
        for number, rows in curves.groupby("trial"):
            assert len(rows) == trials[number].user_attrs["epochs"], (name, number)
            assert list(rows.epoch) == list(range(1, len(rows) + 1))
        # models: COMPLETE trials of this study, with this study's values and target scaling
        models = _stored_models(url, project.id)
        assert models
        for number, (value, y_mean, _) in models.items():
            assert trials[number].state.name == "COMPLETE"
            assert value == pytest.approx(trials[number].value)
            assert y_mean == pytest.approx(scale * float(base["moment (emu)"].mean()))
        # data: each project reads back its own
        assert (project).data == data[name]
        # simulate: values on this project's scale
        grid = simulate.simulate(projects.open_project(url, name), np.linspace(10, 80, 15), np.array([1000.0, 20000.0]))
        peak = float(grid["moment (emu)"].abs().max())
        assert 0.3 * scale * y_max < peak < 3 * scale * y_max, (name, peak)
    assert len(seen_workers) == 2, seen_workers  # both workers of the pool took part


# ---------------------------------------------- 4. three workers, empty database
def _schema_tables(url: str) -> set[str]:
    return set(sa.inspect(storage.get_engine(url)).get_table_names())


def _schema_versions(url: str) -> int:
    with storage.get_engine(url).connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM alembic_version")).scalar()


def test_three_workers_start_together_on_an_empty_database(mariadb_url, spawn):
    url = mariadb_url
    assert _schema_tables(url) == set()
    started = [spawn.service_worker(url, f"race{i}.log") for i in range(3)]  # as `--scale worker=3` on a fresh volume

    def all_up() -> bool:
        for proc, log in started:
            assert proc.poll() is None, f"worker exited {proc.returncode}:\n{log.read_text()}"
        tables = _schema_tables(url)
        return ({"mi_projects", "mi_models", "trials", "alembic_version", "trial_heartbeats"} <= tables
                and _schema_versions(url) >= 1
                and all(f"worker {proc.pid} on" in log.read_text() for proc, log in started))

    wait_until(all_up, timeout=90, what="the schema and three running workers")
    projects.create_project(url, "race", demo_data(), space=tiny_space(), n_trials=4)
    assert _schema_versions(url) == 1
    # done, and idle: a worker may have started one trial more than the target (it checks before
    # others finish); SIGTERM in the middle of it would end that trial as FAIL, logged with a traceback
    wait_until(lambda: (p := projects.progress(projects.open_project(url, "race")))["done"] and p["running"] == 0, timeout=120,
               what="the project to finish and the workers to be idle")
    for proc, log in started:
        assert proc.poll() is None, log.read_text()
    for proc, log in started:
        assert _sigterm(proc, timeout=20) == 0, log.read_text()
    for proc, log in started:
        out = log.read_text()
        assert "Traceback" not in out and "Error" not in out, out
        assert f"worker {proc.pid} ran" in out
    _assert_finished(url, "race", 4)


# --------------------------------------------------- 5. the app restarted
def _start_app(port: int, url: str, log: Path) -> subprocess.Popen:
    compose = _interpolate_tree(yaml.safe_load(COMPOSE.read_text()), parse_env_file(ENV_EXAMPLE))
    app = compose["services"]["app"]
    cmd = _command(app)
    cmd[cmd.index("--server.address") + 1] = "127.0.0.1"
    cmd[cmd.index("--server.port") + 1] = str(port)
    assert cmd[:3] == ["streamlit", "run", APP_SCRIPT]
    app_env = dict(os.environ, **_env_mapping(app))
    app_env.update(MAT_INTERP_DATABASE_URL=url, MAT_INTERP_LOCAL_WORKERS="0")
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "streamlit", *cmd[1:]], cwd=REPO_ROOT, env=app_env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def test_app_restarted_while_a_worker_trains(mariadb_url, spawn, free_port, tmp_path):
    url = mariadb_url
    if not (REPO_ROOT / APP_SCRIPT).is_file():
        pytest.fail(f"{APP_SCRIPT} does not exist")
    projects.create_project(url, "steady", demo_data(), space=_long_space(500), n_trials=6)
    port, log = free_port(), tmp_path / "app.log"
    app = spawn.add(_start_app(port, url, log))
    try:
        _wait_health(app, port, log)
        trainer, trainer_log = spawn.worker(url, "steady", log="trainer.log")
        wait_until(lambda: projects.progress(projects.open_project(url, "steady"))["finished"] >= 1, timeout=120, what="a first trial")
        _stop(app)  # the app goes away while the worker trains
        assert app.returncode is not None
        finished = projects.progress(projects.open_project(url, "steady"))["finished"]
        wait_until(lambda: projects.progress(projects.open_project(url, "steady"))["finished"] > finished, timeout=60,
                   what="progress while the app is down")
        assert trainer.poll() is None, trainer_log.read_text()
        app = spawn.add(_start_app(port, url, log))  # same command, same port
        _wait_health(app, port, log)
        seen = [projects.progress(projects.open_project(url, "steady"))["finished"]]

        def finished_and_record():
            p = projects.progress(projects.open_project(url, "steady"))
            seen.append(p["finished"])
            return p["done"]

        wait_until(finished_and_record, timeout=120, what="the study to finish")
        assert seen == sorted(seen) and seen[-1] > finished
        assert app.poll() is None, log.read_text()[-3000:]
    finally:
        _stop(app)
    out = _wait_exit(trainer, trainer_log, 60)
    assert trainer.returncode == 0, out
    _assert_finished(url, "steady", 6)


# ------------------------------------------- 6. a model larger than max_allowed_packet
PACKET = 48 * 1024  # the demo data (37 KB) fits, a 3 x 64 network (~70 KB) does not


def test_model_too_large_for_the_packet_size(mariadb, mariadb_url, spawn):
    url = mariadb_url
    space = tiny_space(layers=(3, 3), nodes=(64, 64), epochs=5, patience=5, min_resource=100000)
    project = projects.create_project(url, "big", demo_data(), space=space, n_trials=1)
    assert len(demo_data().to_csv_bytes()) < PACKET
    saved = mariadb.get_global("max_allowed_packet")
    try:
        mariadb.set_global("max_allowed_packet", PACKET)  # new connections only: the worker's
        proc, log = spawn.worker(url, "big", log="big.log")
        out = _wait_exit(proc, log, 120)
    finally:
        mariadb.set_global("max_allowed_packet", int(saved))
    assert proc.returncode == 0, out
    table = _table(url, "big")
    cap = project.n_trials + workers.MAX_FAILS_OVER_TARGET + 1
    assert list(table.state) == ["FAIL"] * cap, table  # gave up after the cap, no endless loop
    notes = table.note.tolist()
    assert all(isinstance(n, str) and "could not be stored" in n for n in notes), notes
    assert all("max_allowed_packet" in n for n in notes), notes  # the cause, not the failed ROLLBACK after it
    assert "given up" in out
    assert _stored_models(url, project.id) == {}
    curves = projects.curves_frame(projects.open_project(url, "big"))  # the small writes of the same trials went through
    assert set(curves.trial) == set(table.trial)
    assert mariadb.get_global("max_allowed_packet") == saved
