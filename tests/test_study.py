"""Integration: real worker processes sharing one study on SQLite and on a real MariaDB server."""

from __future__ import annotations

import os
import signal

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from helpers import TINY_ARGS, cli, demo_data, tiny_space, wait_until, worker
from mat_interp_core import models, projects, refine, simulate, storage


def _states(url: str, name: str) -> list[str]:
    return list(projects.trials_frame(projects.open_project(url, name))["state"])


def _run_cli_study(url: str, tmp_path, name: str = "demo") -> None:
    csv = tmp_path / "demo.csv"
    assert cli("demo", "--out", str(csv)).returncode == 0
    res = cli("train", name, "--csv", str(csv), "--x1", "T (K)", "--x2", "H (Oe)", "--y", "moment (emu)",
              "--y-unit", "emu", "--x2-unit", "Oe", "--mass-mg", "1.5",
              "--trials", "4", "--workers", "2", "--database", url, *TINY_ARGS)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "best trial" in res.stdout
    # then the refinement (on by default: the 30 search epochs again, one network per configuration)
    assert "refining the best 10 trials (30 epochs" in res.stdout, res.stdout
    refined = refine.refined_trials(projects.open_project(url, name))
    assert refined and set(refined) == set(models.ranked(projects.open_project(url, name)))
    assert all(a["refined"] == refine.refine_settings(30) for a in refined.values())


def _check_finished_study(url: str, name: str, target: int) -> pd.DataFrame:
    table = projects.trials_frame(projects.open_project(url, name))
    finished = table[table.state.isin(["COMPLETE", "PRUNED"])]
    assert len(finished) >= target and "RUNNING" not in set(table.state)
    assert table.trial.is_unique
    # more than one process took part
    return table


def _cli_here(capsys, *argv: str) -> tuple[int, str, str]:
    """`mat-interp ARGV` run in this process (cli.main): (exit status, stdout, stderr)."""
    from mat_interp_core import cli as cli_main

    capsys.readouterr()
    code = cli_main.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_train_with_two_workers_then_simulate(backend, request, tmp_path, capsys):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "mariadb_url")
    _run_cli_study(url, tmp_path)
    _check_finished_study(url, "demo", 4)
    study = projects.open_project(url, "demo").study()
    workers_seen = {t.user_attrs.get("worker") for t in study.get_trials(deepcopy=False)}
    assert len(workers_seen) == 2, workers_seen
    # curves were recorded for every trial, epoch by epoch
    curves = projects.curves_frame(projects.open_project(url, "demo"))
    assert set(curves.trial) == set(projects.trials_frame(projects.open_project(url, "demo")).trial)
    first = curves[curves.trial == curves.trial.min()]
    assert list(first.epoch) == list(range(1, len(first) + 1))
    # simulate through the CLI, in the data's units (in this process: a `python -m mat_interp_core` child would
    # spend ~9 s importing TensorFlow; the subprocess entry point is run by `train` above and by the Section 3.1 test)
    out = tmp_path / "grid.csv"
    code, _, err = _cli_here(capsys, "simulate", "demo", "--x1", "10:80:0.5", "--x2", "100:50000:2000", "--out", str(out),
                             "--database", url)
    assert code == 0, err
    grid = pd.read_csv(out, comment="#")
    # the project's model set (every kept model): an ensemble adds its members' spread
    n_models = len(models.values(projects.open_project(url, "demo")))
    spread = ["moment (emu) std"] if n_models > 1 else []
    assert list(grid.columns) == ["T (K)", "H (Oe)", "moment (emu)", *spread] and len(grid) == 141 * 25
    assert (grid[spread] >= 0).all().all()
    data = demo_data().frame
    assert 0 < grid["moment (emu)"].abs().max() < 3 * data["moment (emu)"].abs().max()
    # the units given to `train` (moment in emu, H in Oe, 1.5 mg) are stored: |ΔS_M| needs no unit options
    code, out_text, err = _cli_here(capsys, "entropy", "demo", "--from", "training", "--dh", "5", "--database", url)
    assert code == 0, err
    assert "M in emu, H in Oe, sample mass 1.5 mg" in out_text
    # continue the same study
    res = cli("train", "demo", "--more", "2", "--workers", "1", "--database", url)
    assert res.returncode == 0, res.stderr
    _check_finished_study(url, "demo", 6)
    assert projects.open_project(url, "demo").n_trials == 6


def test_only_the_best_models_are_kept_and_export_predicts_user_units(sqlite_url, tmp_path):
    projects.create_project(sqlite_url, "keep", demo_data(), space=tiny_space(keep_models=2, min_resource=1000), n_trials=4)
    w = worker(sqlite_url, "keep")
    out, _ = w.communicate(timeout=300)
    assert w.returncode == 0, out
    with storage.get_engine(sqlite_url).connect() as conn:
        kept = conn.execute(sa.select(storage.models.c.trial_number, storage.models.c.value)).all()
    complete = projects.trials_frame(projects.open_project(sqlite_url, "keep")).query("state == 'COMPLETE'")
    assert len(complete) == 4 and len(kept) == 2
    assert sorted(v for _, v in kept) == sorted(complete.R2.nlargest(2))
    path = tmp_path / "m.keras"
    assert cli("export-model", "keep", "--out", str(path), "--database", sqlite_url).returncode == 0
    import keras

    from mat_interp_core import network

    network.register_layers()  # the exported file's X2 transform layer, as the export command says
    model = keras.saving.load_model(path)
    data = demo_data().frame
    pred = np.asarray(model.predict(data.iloc[:, :2].to_numpy("float32"), verbose=0))[:, 0]
    fitted = simulate.fitted(projects.open_project(sqlite_url, "keep"))
    assert np.allclose(pred, fitted["moment (emu)"], rtol=1e-4, atol=1e-7)


def _long_trials_project(url: str, name: str, n_trials: int):
    # ~2000 epochs of a tiny net: a few seconds per trial, so a kill lands mid-trial
    space = tiny_space(epochs=2000, patience=2000, min_resource=100000, nodes=(8, 8))
    return projects.create_project(url, name, demo_data(), space=space, n_trials=n_trials)


def _curve_rows(url: str, project_id: int, trial: int) -> int:
    with storage.get_engine(url).connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(storage.curves).where(
                storage.curves.c.project_id == project_id, storage.curves.c.trial_number == trial)
        ).scalar()


def test_worker_killed_mid_trial_loses_nothing(sqlite_url):
    """On SQLite; the same on the real MariaDB server (a killed service worker, its trial failed by the heartbeat
    check and retried with the same parameters, nothing finished lost) is test_faults.py's first test."""
    url = sqlite_url
    project = _long_trials_project(url, "kill", 3)
    first = worker(url, "kill")
    # the first trial finishes, the second is under way when the worker dies
    wait_until(lambda: _states(url, "kill").count("COMPLETE") >= 1 and _curve_rows(url, project.id, 1) > 0,
               timeout=180, what="trial 0 complete and trial 1 running")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    table = projects.trials_frame(projects.open_project(url, "kill"))
    assert table.set_index("trial").loc[1, "state"] == "RUNNING"
    complete_before = set(table.query("state == 'COMPLETE'").trial)

    second = worker(url, "kill")
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    table = projects.trials_frame(projects.open_project(url, "kill")).set_index("trial")
    assert table.loc[1, "state"] == "FAIL"  # the killed trial, failed by the heartbeat check
    assert "RUNNING" not in set(table.state)
    assert (table.state == "COMPLETE").sum() >= 3
    assert complete_before <= set(table.index[table.state == "COMPLETE"])  # no finished trial lost
    study = projects.open_project(url, "kill").study()
    retried = [t for t in study.get_trials(deepcopy=False) if t.system_attrs.get("failed_trial") == 1]
    assert retried, "the killed trial was not re-queued"
    assert retried[0].state == TrialState.COMPLETE and retried[0].params == study.trials[1].params


def test_sigterm_while_a_worker_restarts_for_memory_stops_it_cleanly(sqlite_url):
    """A stop signal in the window where a worker re-execs itself (memory budget) is kept pending across the exec
    and handled by the new image: exit 0, no trial running, nothing lost (no death by the signal's default)."""
    projects.create_project(sqlite_url, "recycle", demo_data(), space=tiny_space(epochs=10), n_trials=3)
    proc = worker(sqlite_url, "recycle", MAT_INTERP_WORKER_MAX_RSS_MB="1")  # restart after every trial
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "restarting to release memory" in line:
            proc.send_signal(signal.SIGTERM)  # the new image is starting now
            break
    out = "".join(lines) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert out.count("restarting to release memory") == 1 and out.rstrip().endswith("ran 0 trials"), out
    states = _states(sqlite_url, "recycle")
    assert states.count("COMPLETE") + states.count("PRUNED") == 1 and "RUNNING" not in states, states


def _threads_blocking(pid: int, signum: int) -> list[bool]:
    """For each thread of process `pid`: is `signum` in its blocked mask (/proc/PID/task/*/status, SigBlk)?"""
    blocked = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            status = open(f"/proc/{pid}/task/{task}/status").read()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        mask = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
        blocked.append(bool(mask >> (signum - 1) & 1))
    return blocked


def test_every_thread_of_a_training_worker_leaves_stop_signals_to_one_taker(sqlite_url):
    """No thread (numpy's, TensorFlow's) can swallow a SIGTERM that a re-exec would then lose: all block it but
    the one in sigwait (the kernel unblocks the waited set while it waits), and that one stops the worker cleanly."""
    projects.create_project(sqlite_url, "mask", demo_data(), space=tiny_space(epochs=2000, patience=2000), n_trials=2)
    proc = worker(sqlite_url, "mask")
    wait_until(lambda: "RUNNING" in _states(sqlite_url, "mask"), timeout=180, what="a trial running")
    for signum in (signal.SIGTERM, signal.SIGINT):
        threads = _threads_blocking(proc.pid, signum)
        assert len(threads) > 2 and threads.count(False) == 1, (signum, threads)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0 and "stopping after the current epoch" in out, out
    assert "RUNNING" not in _states(sqlite_url, "mask")


def test_second_machine_joins_with_only_the_database_url(mariadb_url, tmp_path):
    """A worker with its own empty home folder and working directory, given only --database."""
    space = tiny_space(epochs=400, patience=400, min_resource=100000, nodes=(8, 8))
    projects.create_project(mariadb_url, "shared", demo_data(), space=space, n_trials=8)
    local = worker(mariadb_url, "shared")
    wait_until(lambda: "COMPLETE" in _states(mariadb_url, "shared"), timeout=180, what="a first trial on machine one")
    other_home = tmp_path / "machine2"
    other_home.mkdir()
    remote = worker(mariadb_url, cwd=other_home, MAT_INTERP_HOME=str(other_home / "home"),
                    MAT_INTERP_DATABASE_URL="sqlite:////nonexistent/never-used.db")
    out_remote, _ = remote.communicate(timeout=300)
    out_local, _ = local.communicate(timeout=300)
    assert remote.returncode == 0 and local.returncode == 0, out_remote + out_local
    study = projects.open_project(mariadb_url, "shared").study()
    by_worker = {}
    for t in study.get_trials(deepcopy=False):
        by_worker.setdefault(t.user_attrs["worker"].split(":")[1], []).append(t.state.name)
    assert str(remote.pid) in by_worker, (by_worker, out_remote)
    assert "COMPLETE" in by_worker[str(remote.pid)]
    assert sum(s.count("COMPLETE") for s in by_worker.values()) >= 8


def test_section31_short_study_simulates_in_emu(section31_csv, sqlite_url, tmp_path):
    res = cli("train", "erco2", "--csv", str(section31_csv), "--x1", "X1_demo1", "--x2", "X2_demo1", "--y", "Y_demo1",
              "--trials", "1", "--workers", "1", "--layers", "4:4", "--nodes", "120:120", "--lr", "2e-3:2e-3",
              "--solver", "adam", "--epochs", "800", "--patience", "800", "--seed", "1", "--refine-epochs", "0",
              "--database", sqlite_url)  # no refinement: the search's own model, trained for its full 800 epochs
    assert res.returncode == 0, res.stdout + res.stderr
    grid_csv = tmp_path / "grid.csv"
    # 0.2 T steps = 2000 Oe, over the measured field range
    res = cli("simulate", "erco2", "--x1", "10:60:0.5", "--x2", "2000:50000:2000", "--out", str(grid_csv),
              "--database", sqlite_url)
    assert res.returncode == 0, res.stderr
    grid = pd.read_csv(grid_csv, comment="#")
    data = pd.read_csv(section31_csv)
    assert grid.shape == (101 * 25, 3)
    top = data["Y_demo1"].max()
    assert grid["Y_demo1"].between(-0.02 * top, 1.2 * top).all()  # emu, like the data
    fit_csv = tmp_path / "fitted.csv"
    assert cli("fitted", "erco2", "--out", str(fit_csv), "--database", sqlite_url).returncode == 0
    fitted = pd.read_csv(fit_csv, comment="#")
    worst = (fitted["residual"].abs() / fitted["Y_demo1 measured"].abs().max()).max()
    assert worst < 0.02, f"largest residual is {worst:.2%} of the largest moment"


def test_ctrl_c_on_train_stops_the_workers_and_leaves_no_trial_running(sqlite_url, tmp_path):
    import subprocess
    import sys

    from helpers import REPO_ROOT, env

    csv = tmp_path / "demo.csv"
    assert cli("demo", "--out", str(csv)).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "mat_interp_core", "train", "cc", "--csv", str(csv), "--x1", "T (K)", "--x2", "H (Oe)",
         "--y", "moment (emu)", "--trials", "20", "--workers", "2", "--database", sqlite_url, "--layers", "2:2",
         "--nodes", "8:8", "--solver", "adam", "--epochs", "5000", "--patience", "5000", "--min-resource", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env(), stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: projects.list_projects(sqlite_url) and len(projects.curves_frame(projects.open_project(sqlite_url, "cc"))) > 0,
                   timeout=120, what="a trial under way")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "--more 0" in err
    states = _states(sqlite_url, "cc")
    assert "RUNNING" not in states and "FAIL" in states
    table = projects.trials_frame(projects.open_project(sqlite_url, "cc"))
    assert table[table.state == "FAIL"].note.str.startswith("stopped by request at epoch ").all(), table
