"""Unit tests of the core library: search space, network, storage, projects, simulate units, CLI errors."""

from __future__ import annotations

import os

import numpy as np
import optuna
import pytest
import sqlalchemy as sa

from helpers import demo_data, tiny_space
from mat_interp_core import cli, network, projects, simulate, storage, training
from mat_interp_core.space import SearchSpace, SpaceError, batch_choices, parse_range


# ---------------------------------------------------------------- space
@pytest.mark.parametrize("n, expected", [(10, (16, 32, 64)), (255, (16, 32, 64)), (256, (64, 128, 256)),
                                         (808, (64, 128, 256)), (2737, (128, 256, 512)), (29977, (256, 512, 1024))])
def test_batch_choices_follow_the_paper(n, expected):
    assert batch_choices(n) == expected


def test_default_space_is_the_papers():
    s = SearchSpace()
    assert (s.layers, s.nodes, s.lr) == ((2, 10), (50, 200), (5e-4, 5e-3))
    assert s.solvers == ("adam", "rmsprop", "sgd", "nesterov")
    assert (s.epochs, s.patience, s.min_resource, s.reduction_factor) == (500, 20, 50, 2)


def test_suggest_stays_in_the_ranges():
    space = SearchSpace(layers=(3, 4), nodes=(10, 12), lr=(1e-3, 2e-3), solvers=("sgd", "adam"))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        p = space.suggest(trial, 808)
        assert 3 <= p["layers"] <= 4 and 10 <= p["nodes"] <= 12 and 1e-3 <= p["lr"] <= 2e-3
        assert p["batch"] in (64, 128, 256) and p["solver"] in ("sgd", "adam")
        study.tell(trial, 0.0)


@pytest.mark.parametrize("kwargs, word", [
    (dict(layers=(5, 2)), "layers"), (dict(nodes=(0, 10)), "nodes"), (dict(lr=(1e-3, 10.0)), "lr"),
    (dict(solvers=("lbfgs",)), "solver"), (dict(epochs=0), "epochs"), (dict(objective="val"), "objective"),
])
def test_bad_space_is_rejected_with_the_setting_named(kwargs, word):
    with pytest.raises(SpaceError, match=word):
        SearchSpace(**kwargs)


def test_parse_range():
    assert parse_range("2:10", "layers", int) == (2, 10)
    assert parse_range("5e-4:5e-3", "lr") == (5e-4, 5e-3)
    with pytest.raises(SpaceError, match="--layers"):
        parse_range("2-10", "layers", int)
    with pytest.raises(SpaceError, match="whole"):
        parse_range("2.5:4", "layers", int)


def test_space_round_trips_through_a_dict():
    s = tiny_space(seed=3, objective="holdout")
    assert SearchSpace.from_dict(s.to_dict()) == s


# ---------------------------------------------------------------- network
def test_model_builder_shape_and_input_standardisation():
    x = np.column_stack([np.linspace(5, 100, 50), np.repeat([100.0, 50000.0], 25)])
    model = network.build_model(3, 17, x)
    dense = [layer for layer in model.layers if layer.name.startswith("dense_")]
    assert len(dense) == 3 and all(layer.units == 17 for layer in dense)
    norm = model.layers[0]
    z = np.asarray(norm(x.astype("float32")))
    assert np.allclose(z.mean(axis=0), 0, atol=1e-5) and np.allclose(z.std(axis=0), 1, atol=1e-3)


def test_fit_learns_and_saved_model_predicts_user_units():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(0, 1, 300), rng.uniform(0, 1, 300)])
    y = 3e-3 * (x[:, 0] ** 2 + 0.5 * x[:, 1]) + 0.07  # emu-like magnitudes
    ys = (y - y.mean()) / y.std()
    model = network.build_model(2, 32, x)
    result = network.fit(model, x, ys, solver="adam", lr=5e-3, batch_size=32, epochs=150, patience=150, seed=1)
    assert result.epochs == 150 and result.loss[-1] < 0.05 < result.loss[0]
    exported = network.model_from_bytes(network.model_to_bytes(network.with_target_scaling(model, y.mean(), y.std())))
    pred = np.asarray(exported.predict(x.astype("float32"), verbose=0))[:, 0]
    assert np.max(np.abs(pred - y)) < 0.1 * (y.max() - y.min())
    assert abs(pred.mean() - y.mean()) < 1e-4  # units of Y, not standardised


def test_early_stop_restores_the_best_weights():
    x = np.column_stack([np.linspace(0, 1, 64), np.zeros(64) + np.repeat([0.0, 1.0], 32)])
    ys = (x[:, 0] - 0.5) / 0.29
    model = network.build_model(2, 8, x)
    seen = []
    result = network.fit(model, x, ys, solver="sgd", lr=0.5, batch_size=8, epochs=200, patience=3, seed=0,
                         on_epoch=lambda e, loss: seen.append(loss))
    assert result.stopped_early and result.epochs < 200
    final = float(np.mean((network.predict_std(model, x) - ys) ** 2))
    assert final <= min(seen) * 1.5 + 1e-6  # weights of the best epoch, not of the last


def test_fused_adam_is_keras_adam_step_for_step():
    """FusedAdam applies Keras's Adam formula: from the same weights and batches, the same weights after a few
    epochs (float rounding apart), the learning-rate decay included."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(96, 2))
    ys = np.sin(6 * x[:, 0]) * x[:, 1]
    ys = (ys - ys.mean()) / ys.std()
    import keras

    start, weights = [], []
    for fused in (False, True):
        keras.utils.set_random_seed(4)
        model = network.build_model(3, 16, x)
        start.append(model.get_weights())
        network.fit_many([model], x, ys, solver="adam", lr=3e-3, batch_size=16, epochs=4, patience=4, seed=2,
                         fused=fused)
        weights.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*start))  # the same start
    assert max(float(np.abs(a - b).max()) for a, b in zip(start[0], weights[0])) > 1e-2  # training moved them
    for keras_w, fused_w in zip(*weights):
        assert np.allclose(keras_w, fused_w, rtol=1e-4, atol=1e-5)


def test_an_epoch_capped_at_max_steps_sees_that_many_batches():
    """The search's epoch on large data (max_steps): a few batches of a fresh shuffle, its loss over the rows it
    saw. With a learning rate too small to move the weights, a full pass reports the whole MSE every epoch, and
    a 1-batch epoch the MSE of 8 random rows: different every epoch, the whole MSE on average."""
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(64, 2))
    ys = np.sin(6 * x[:, 0]) * x[:, 1]
    ys = (ys - ys.mean()) / ys.std()
    model = network.build_model(2, 8, x)
    whole = float(np.mean((network.predict_std(model, x) - ys) ** 2))
    runs = {}
    for cap in (None, 1):
        seen = []
        network.fit(model, x, ys, solver="sgd", lr=1e-12, batch_size=8, epochs=60, patience=60, seed=0,
                    max_steps=cap, on_epoch=lambda e, loss: seen.append(loss))
        runs[cap] = np.array(seen)
    assert np.allclose(runs[None], whole, rtol=1e-4)
    assert runs[1].std() > 0.05 * whole  # 8 rows an epoch, not 64
    assert abs(runs[1].mean() - whole) < 0.3 * whole  # normalised by the rows seen (not by all 64: 1/8 of it)
    # the search caps its epochs on large data only (Section 3.4's map), not on Section 3.1's 808 points
    assert training.search_max_steps(808) is None and training.search_max_steps(29977) == 16


def test_unknown_solver():
    with pytest.raises(ValueError, match="solver"):
        network.make_optimizer("lbfgs", 1e-3, 10, 10)


# ---------------------------------------------------------------- projects and storage
def test_create_list_and_delete_only_touches_one_project(sqlite_url):
    data = demo_data()
    projects.create_project(sqlite_url, "a", data, space=tiny_space(), n_trials=3, units={"y": "emu"})
    projects.create_project(sqlite_url, "b", data, space=tiny_space(), n_trials=2)
    assert [p.name for p in projects.list_projects(sqlite_url)] == ["a", "b"]
    a = projects.open_project(sqlite_url, "a")
    assert a.units == {"y": "emu"} and a.space == tiny_space() and a.n_rows == len(data.frame)
    back = a.data
    assert back.frame.equals(data.frame)
    projects.delete_project(projects.open_project(sqlite_url, "a"))
    assert [p.name for p in projects.list_projects(sqlite_url)] == ["b"]
    assert optuna.get_all_study_names(storage.optuna_storage(sqlite_url)) == ["b"]
    assert projects.open_project(sqlite_url, "b").data.frame.equals(data.frame)


def test_a_project_is_stored_only_once_its_study_exists(sqlite_url):
    """A listed project can always be opened with its study (the Monitor and the workers read the list while
    `train` creates one); a project row left without a study (older code) blocks nothing but its name, and the
    study made for it is removed again."""
    storage.init_database(sqlite_url)
    seen = []

    def before(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith(f"INSERT INTO {storage.projects.name.upper()}"):
            seen.append("new" in optuna.get_all_study_names(storage.optuna_storage(sqlite_url)))

    engine = storage.get_engine(sqlite_url)
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        projects.create_project(sqlite_url, "new", demo_data(), space=tiny_space(), n_trials=2)
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
    assert seen == [True]
    with engine.begin() as conn:  # a row without its study
        conn.execute(storage.projects.insert().values(name="orphan", created_at=0.0, x1_name="T", x2_name="H",
                                                      y_name="M", n_rows=0, units="{}", space="{}", n_trials=1,
                                                      stop_requested=False))
    with pytest.raises(projects.ProjectError, match="exists already"):
        projects.create_project(sqlite_url, "orphan", demo_data(), space=tiny_space(), n_trials=2)
    assert "orphan" not in optuna.get_all_study_names(storage.optuna_storage(sqlite_url))


def test_duplicate_project_is_refused_and_nothing_changes(sqlite_url):
    projects.create_project(sqlite_url, "dup", demo_data(), space=tiny_space(), n_trials=3)
    with pytest.raises(projects.ProjectError, match="exists already"):
        projects.create_project(sqlite_url, "dup", demo_data(), space=tiny_space(), n_trials=99)
    assert projects.open_project(sqlite_url, "dup").n_trials == 3


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".", "x" * 65, "semi;colon", "sp ace"])
def test_project_names_that_could_form_paths_are_refused(sqlite_url, name):
    with pytest.raises(Exception, match="(?i)letters|name"):
        projects.create_project(sqlite_url, name, demo_data(), space=tiny_space())
    assert projects.list_projects(sqlite_url) == []


def test_add_trials_and_stop_flag(sqlite_url):
    projects.create_project(sqlite_url, "p", demo_data(), space=tiny_space(), n_trials=3)
    projects.request_stop(projects.open_project(sqlite_url, "p"))
    assert projects.open_project(sqlite_url, "p").stop_requested
    p = projects.add_trials(projects.open_project(sqlite_url, "p"), 4)
    assert p.n_trials == 7 and not p.stop_requested


def test_init_database_is_idempotent(sqlite_url):
    storage.init_database(sqlite_url)
    storage.init_database(sqlite_url)
    names = sa.inspect(storage.get_engine(sqlite_url)).get_table_names()
    assert {"mi_projects", "mi_datasets", "mi_models", "mi_curves", "studies", "trials"} <= set(names)


# ---------------------------------------------------------------- simulate units
def test_simulate_returns_user_units_and_ensemble_spread():
    class Linear:
        def __init__(self, a):
            self.a = a

        def predict(self, x1, x2):
            return self.a * np.asarray(x1) + 1e-5 * np.asarray(x2)

    project = projects.Project(1, "p", 0.0, "T (K)", "H (Oe)", "moment (emu)", 10, {}, SearchSpace(), 1, False)
    grid = simulate.make_grid(np.array([1.0, 2.0]), np.array([100.0, 200.0]), names=("T (K)", "H (Oe)"))
    single = simulate.predict_frame(Linear(2.0), project, grid)
    assert list(single.columns) == ["T (K)", "H (Oe)", "moment (emu)"]
    assert np.allclose(single["moment (emu)"], 2.0 * single["T (K)"] + 1e-5 * single["H (Oe)"])
    ens = simulate.predict_frame(simulate.Ensemble([Linear(1.0), Linear(3.0)]), project, grid)
    assert np.allclose(ens["moment (emu)"], single["moment (emu)"])
    assert np.allclose(ens["moment (emu) std"], ens["T (K)"])  # std of {1, 3} * T


# ---------------------------------------------------------------- CLI: bad input, clear message, nothing stored
@pytest.mark.parametrize("args, message", [
    (["--x1", "T (K)", "--x2", "H (Oe)", "--y", "nope"], "nope"),
    (["--x1", "T (K)", "--x2", "H (Oe)", "--y", "moment (emu)", "--x2-values", "100,777"], "777"),
    (["--x1", "T (K)", "--x2", "H (Oe)", "--y", "moment (emu)", "--layers", "9:2"], "layers"),
    (["--x1", "T (K)", "--x2", "H (Oe)", "--y", "moment (emu)", "--solver", "lbfgs"], "solver"),
    (["--x1", "T (K)", "--x2", "H (Oe)", "--y", "moment (emu)", "--trials", "0"], "trials"),
    (["--x1", "T (K)", "--x2", "H (Oe)", "--y", "moment (emu)", "--mass-mg", "-1"],
     "--mass-mg must be a positive number"),
])
def test_cli_train_rejects_bad_input_before_storing(sqlite_url, tmp_path, capsys, args, message):
    csv = tmp_path / "demo.csv"
    assert cli.main(["demo", "--out", str(csv)]) == 0
    code = cli.main(["train", "p1", "--csv", str(csv), "--database", sqlite_url, *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert projects.list_projects(sqlite_url) == []


def test_cli_train_bad_name_and_missing_file(sqlite_url, tmp_path, capsys):
    assert cli.main(["train", "../x", "--csv", "a.csv", "--x1", "a", "--x2", "b", "--y", "c", "--database", sqlite_url]) == 2
    assert "letters" in capsys.readouterr().err
    assert cli.main(["train", "ok", "--csv", str(tmp_path / "none.csv"), "--x1", "a", "--x2", "b", "--y", "c",
                     "--database", sqlite_url]) == 2
    assert "none.csv" in capsys.readouterr().err


def test_cli_simulate_rejects_bad_grids(sqlite_url, capsys, monkeypatch):
    projects.create_project(sqlite_url, "g", demo_data(), space=tiny_space(), n_trials=1)
    assert cli.main(["simulate", "g", "--x1", "10:60:0", "--x2", "1,2", "--out", "x.csv", "--database", sqlite_url]) == 2
    assert "step" in capsys.readouterr().err.lower()
    monkeypatch.setenv("MAT_INTERP_MAX_GRID_POINTS", "100")
    assert cli.main(["simulate", "g", "--x1", "0:100:1", "--x2", "1,2", "--out", "x.csv", "--database", sqlite_url]) == 2
    assert "MAT_INTERP_MAX_GRID_POINTS" in capsys.readouterr().err
    monkeypatch.delenv("MAT_INTERP_MAX_GRID_POINTS")
    assert cli.main(["simulate", "g", "--x1", "0:10:1", "--x2", "1,2", "--out", "x.csv", "--database", sqlite_url]) == 2
    assert "no finished trial" in capsys.readouterr().err


def test_curves_of_finished_trials_are_read_once_and_thinned_for_plots(sqlite_url) -> None:
    """projects.curves_frame: a finished trial's rows are read once per process (a row added behind its back
    afterwards is not read again), a running trial's every time; max_points keeps first, last and best."""
    from mat_interp_core import workers

    projects.create_project(sqlite_url, "c", demo_data(), space=tiny_space(epochs=40, patience=40,
                                                                           min_resource=1000), n_trials=2)
    assert workers.run_worker(sqlite_url, "c", exit_when_idle=True, threads=1, poll_seconds=0.1) == 2
    project = projects.open_project(sqlite_url, "c")
    first = projects.curves_frame(project)
    assert set(first.trial) == {0, 1} and (first.groupby("trial").epoch.max() == 40).all()
    with storage.get_engine(sqlite_url).begin() as conn:  # a row no finished trial can get: not read again
        conn.execute(storage.curves.insert(), [{"project_id": project.id, "trial_number": 0, "epoch": 41,
                                                "loss": 0.5, "r2": 0.5}])
    assert projects.curves_frame(projects.open_project(sqlite_url, "c")).epoch.max() == 40
    thin = projects.curves_frame(projects.open_project(sqlite_url, "c"), max_points=10)
    for trial, part in thin.groupby("trial"):
        full = first[first.trial == trial]
        assert 10 <= len(part) <= 12
        assert part.epoch.iloc[0] == 1 and part.epoch.iloc[-1] == 40
        assert full.r2.max() in set(part.r2)


def test_thread_count_waits_for_tensorflow_and_applies_before_its_first_op() -> None:
    """network.configure_threads does not import TensorFlow (seconds per CLI process that never trains or
    predicts); the first function that needs Keras applies the count before any op runs."""
    import subprocess
    import sys as _sys

    code = ("import sys; from mat_interp_core import network; network.configure_threads(1); "
            "assert 'tensorflow' not in sys.modules; network.keras_ready(); import tensorflow as tf; "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    out = subprocess.run([_sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "1"], out.stdout
