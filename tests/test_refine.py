"""Refinement after the search: retrain the best configurations without early stop, keep the best refined models.

A tiny demo project trained by an in-process worker on SQLite; refinement with
a few dozen epochs, so each test takes seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from helpers import demo_data, tiny_space
from mat_interp_core import cli, models, network, projects, refine, storage, workers
from mat_interp_core.space import SearchSpace, SpaceError


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _models(url: str) -> dict[int, tuple[float, bytes]]:
    m = storage.models
    with storage.get_engine(url).connect() as conn:
        return {r.trial_number: (r.value, r.keras) for r in conn.execute(sa.select(m.c.trial_number, m.c.value, m.c.keras))}


@pytest.fixture
def searched(sqlite_url) -> tuple[str, str]:
    """4 finished trials of a tiny search (early stop after 5 flat epochs), 2 models kept."""
    space = tiny_space(epochs=30, patience=5, min_resource=1000, keep_models=2, seed=0)
    projects.create_project(sqlite_url, "r", demo_data(), space=space, n_trials=4)
    assert workers.run_worker(sqlite_url, "r", exit_when_idle=True, threads=1, poll_seconds=0.1) == 4
    return sqlite_url, "r"


def test_refine_replaces_the_best_models_records_r2_and_is_skipped_the_second_time(searched) -> None:
    url, name = searched
    before = _models(url)
    assert len(before) == 2
    study = projects.open_project(url, name).study()
    by_search = sorted((t for t in study.trials if t.value is not None), key=lambda t: -t.value)
    calls = []
    done = refine.refine_project(projects.open_project(url, name), candidates=3, epochs=12, seeds=2, tolerance=None,
                                 progress=lambda *a: calls.append(a))
    # the 3 best by search R² were refined, the best 2 refined models kept (keep_models)
    assert sorted(done) == sorted(t.number for t in by_search[:3])
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    after = _models(url)
    assert len(after) == 2 and set(after) <= set(done)
    attrs = {t.number: t.user_attrs for t in projects.open_project(url, name).study().trials}
    for number, (value, blob) in after.items():
        assert attrs[number]["refined"] == {"epochs": 12, "seeds": 2, "solver": "adam"}
        assert attrs[number]["refined_r2"] == pytest.approx(value)
        assert number not in before or blob != before[number][1]  # a new model, not the search's
    # the refined value is the ranking: best refined R² first
    ranked = models.ranked(projects.open_project(url, name))
    assert ranked == sorted(after, key=lambda n: -after[n][0])
    assert refine.refined_trials(projects.open_project(url, name)).keys() == set(after)
    # the stored model is the mean of its 2 seeds, and predicts Y in the data's units
    members = models.load_best(projects.open_project(url, name), 2)
    x, y = demo_data().arrays()
    pred = members[0].predict(x[:, 0], x[:, 1])
    r2 = 1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert r2 == pytest.approx(members[0].value, abs=1e-5)
    assert any(layer.name == "seed_average" for layer in members[0].model.layers[1].layers)
    # a second call refines nothing and changes nothing
    calls.clear()
    assert refine.refine_project(projects.open_project(url, name), candidates=3, epochs=12, seeds=2, tolerance=None,
                                 progress=lambda *a: calls.append(a)) == []
    assert calls == [] and _models(url) == after
    # other settings refine again: fewer epochs, or each trial's own solver
    assert len(refine.refine_project(projects.open_project(url, name), top=2, candidates=2, epochs=13, seeds=1, tolerance=None)) == 2
    own = refine.refine_project(projects.open_project(url, name), top=2, candidates=2, epochs=13, seeds=1, tolerance=None, solver="trial")
    assert len(own) == 2
    assert all(t.user_attrs["refined"]["solver"] == "trial" for t in projects.open_project(url, name).study().trials
               if t.number in own)


def test_refine_drops_models_that_fit_much_worse_than_the_best(searched) -> None:
    url, name = searched
    refine.refine_project(projects.open_project(url, name), candidates=3, epochs=12, seeds=1, tolerance=None)
    values = sorted(v for v, _ in _models(url).values())
    assert len(values) == 2 and values[0] < values[1]
    # same settings: nothing retrained, but a tolerance of 1 keeps only the best fit
    assert refine.refine_project(projects.open_project(url, name), candidates=3, epochs=12, seeds=1, tolerance=1.0) == []
    kept = _models(url)
    assert [v for v, _ in kept.values()] == [values[1]]
    assert len(models.load_best(projects.open_project(url, name), 5)) == 1


def test_refine_cli_reports_and_rejects_bad_settings(searched, capsys) -> None:
    url, name = searched
    code, out, err = run(capsys, "refine", name, "--epochs", "10", "--seeds", "1", "--database", url)
    assert code == 0, err
    assert "refining the best 2 trials" in out and "kept 2 models" in out  # keep_models 2, all refined
    assert "refined (10 epochs x 1 seeds, adam)" in out
    code, out, err = run(capsys, "refine", name, "--epochs", "10", "--seeds", "1", "--database", url)
    assert code == 0 and "nothing to refine" in out
    for extra, message in ((["--top", "0"], "--top must be a whole number >= 1; got 0"),
                           (["--epochs", "-5"], "--epochs must be a whole number >= 1; got -5"),
                           (["--seeds", "0"], "--seeds must be a whole number >= 1; got 0"),
                           (["--tolerance", "0.5"], "--tolerance must be a number >= 1; got 0.5"),
                           (["--solver", "lbfgs"], "--solver must be trial or one of adam, rmsprop, sgd, nesterov")):
        code, out, err = run(capsys, "refine", name, *extra, "--database", url)
        assert code == 2, (extra, out, err)
        assert message in err and "Traceback" not in err, (extra, err)
    code, _, err = run(capsys, "refine", "nope", "--database", url)
    assert code == 2 and "no project named 'nope'" in err


def test_refine_needs_a_finished_trial(sqlite_url, capsys) -> None:
    projects.create_project(sqlite_url, "empty", demo_data(), space=tiny_space(), n_trials=1)
    code, _, err = run(capsys, "refine", "empty", "--database", sqlite_url)
    assert code == 2 and "train it first" in err


def test_refinement_setting_defaults_and_old_projects() -> None:
    assert SearchSpace().refinement_epochs == 500  # the paper's 500 again, without early stop
    assert SearchSpace(epochs=30).refinement_epochs == 30
    assert SearchSpace(refine_epochs=0).refinement_epochs == 0
    old = SearchSpace().to_dict()
    del old["refine_epochs"]  # a project stored before refinement existed
    assert SearchSpace.from_dict(old) == SearchSpace()
    with pytest.raises(SpaceError, match="refine_epochs"):
        SearchSpace(refine_epochs=-1)
    # A trial refined longer the same way needs nothing more (projects refined at the earlier 1000 epochs)
    assert refine.covers(refine.refine_settings(1000), refine.refine_settings(500))
    assert refine.covers(refine.refine_settings(500), refine.refine_settings(500))
    assert not refine.covers(refine.refine_settings(500), refine.refine_settings(1000))
    assert not refine.covers(refine.refine_settings(1000, seeds=3), refine.refine_settings(500))
    assert not refine.covers(refine.refine_settings(1000, start="search"), refine.refine_settings(500))
    assert not refine.covers(None, refine.refine_settings(500))


def test_average_models_is_the_mean_of_its_members() -> None:
    x = np.random.default_rng(0).normal(size=(50, 2)).astype("float32")
    nets = [network.build_model(2, 8, x) for _ in range(3)]
    each = np.array([network.predict_std(n, x) for n in nets])
    avg = network.model_from_bytes(network.model_to_bytes(network.average_models(nets)))
    np.testing.assert_allclose(network.predict_std(avg, x), each.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_a_finishing_worker_restarts_between_refinements_when_it_outgrows_its_memory_budget(sqlite_url) -> None:
    """Over MAT_INTERP_WORKER_MAX_RSS_MB after a refined model is stored, the finishing worker restarts (exec) and
    goes on with the rest: every kept model ends refined once, none twice; once more before the band's folds (a
    group of fold networks grows the process), but not again in the fresh process that trains them."""
    from helpers import cli as run_cli

    url, name = sqlite_url, "r"
    # two kept models: one restart between their refinements, none after the last (each restart re-imports TF, ~9 s)
    projects.create_project(url, name, demo_data(), n_trials=2,
                            space=tiny_space(epochs=20, patience=5, min_resource=1000, keep_models=2, seed=0))
    assert workers.run_worker(url, name, exit_when_idle=True, threads=1, poll_seconds=0.1) == 2  # the search
    done = run_cli("worker", name, "--database", url, "--exit-when-idle", "--threads", "1", "--finish",
                   MAT_INTERP_WORKER_MAX_RSS_MB="1")  # any process is over 1 MB: restart after every model but the last
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("restarting to release memory") == 2, out  # after the first of 2 kept models; then the folds
    assert "ran the steps before the held-out folds; restarting to release memory" in out
    assert [line.split(":")[1].split()[0] for line in out.splitlines()
            if line.startswith("finishing r:") and " trial " in line] == [  # not the band's folds after them
        "1/2", "1/1"], out  # each restart skips what is stored
    assert f"project {name} finished" in out
    assert refine.refine_status(projects.open_project(url, name)) == (2, 2)
    assert sorted(t.user_attrs["refined"]["epochs"] for t in projects.open_project(url, name).study().trials) == [20, 20]



def test_networks_trained_side_by_side_match_their_solo_training_and_keep_to_their_rows() -> None:
    """network.fit_many: the first seed's network is the one train_config gives alone (same seed, same batches);
    a network masked off some rows never learns them."""
    from mat_interp_core import dataset, synthetic, training

    data = demo_data()
    x, y = data.arrays()
    params = {"layers": 2, "nodes": 16, "lr": 3e-3, "batch": 64, "solver": "adam"}
    solo, _, _, _ = training.train_config(data, params, epochs=15, patience=15, seed=7)
    ((first, r1), (second, r2)), _, _ = training.train_configs(data, params, epochs=15, patience=15, seeds=[7, 8])
    assert r1.epochs == r2.epochs == 15
    assert np.allclose(network.predict_std(first, x), network.predict_std(solo, x), atol=1e-4)
    assert not np.allclose(network.predict_std(second, x), network.predict_std(solo, x), atol=1e-3)
    # network 1 never sees the rows of one field, whose moments are made absurd; network 0 sees every row
    frame = synthetic.demo_frame()
    field = np.unique(frame["H (Oe)"])[3]
    frame.loc[frame["H (Oe)"] == field, "moment (emu)"] += 50 * frame["moment (emu)"].std()
    bad = dataset.validate(frame, "T (K)", "H (Oe)", "moment (emu)")
    hidden = bad.set_points.mask(field)
    xb, yb = bad.arrays()
    trained, mean, std = training.train_configs(bad, params, epochs=40, patience=40, seeds=[1, 1],
                                                rows=[np.ones(len(yb), bool), ~hidden])
    (full, _), (masked, _) = trained

    def err(net):
        return np.abs(network.predict_std(net, xb[~hidden]) * std + mean - yb[~hidden]).mean()

    assert err(masked) < 0.5 * err(full)  # the absurd rows pulled the network that saw them, not the other


def test_refinement_from_the_search_model_goes_on_from_it(searched) -> None:
    """start="search" begins at the search's stored model: one epoch leaves it near the search's fit, where one
    epoch from scratch is far from it; the settings say which start."""
    url, name = searched
    project = projects.open_project(url, name)
    best = models.ranked(project)[0]
    value = next(t.value for t in project.study().trials if t.number == best)
    assert best in refine.refine_project(project, candidates=2, epochs=1, seeds=1, start="search")
    attrs = {t.number: t.user_attrs for t in projects.open_project(url, name).study().trials}
    assert attrs[best]["refined"] == {"epochs": 1, "seeds": 1, "solver": "adam", "start": "search"}
    warm = attrs[best]["refined_r2"]
    assert warm > value - 0.02
    refine.refine_project(projects.open_project(url, name), candidates=2, epochs=1, seeds=1, force=True)
    scratch = {t.number: t.user_attrs for t in projects.open_project(url, name).study().trials}[best]["refined_r2"]
    assert scratch < warm - 0.05
    with pytest.raises(projects.ProjectError, match="--start must be one of scratch, search"):
        refine.refine_project(projects.open_project(url, name), start="nowhere")
