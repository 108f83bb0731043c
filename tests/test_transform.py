"""The X2 input transform: inside the saved model (safe-mode load, raw X2 in), in the search space, kept by the
refinement and by the held-out folds."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import demo_data, tiny_space, transform_layer as _inner
from mat_interp_core import models, network, projects, refine, uncertainty, workers
from mat_interp_core.space import SearchSpace, SpaceError


@pytest.mark.parametrize("kind", network.X2_TRANSFORMS)
def test_transform_is_saved_in_the_model_and_takes_raw_x2(kind, tmp_path) -> None:
    x = np.stack([np.tile(np.linspace(10, 60, 20), 4), np.repeat([100.0, 1000.0, 20000.0, 50000.0], 20)], axis=1)
    net = network.build_model(2, 8, x, kind)
    model = network.with_target_scaling(net, 3.0, 2.0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)  # no Lambda: safe mode loads it
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    layer = _inner(loaded)
    if kind == "linear":
        assert layer is None  # the paper's network, unchanged
        return
    scale = {"asinh": 100.0, "cbrt": 50000.0}[kind]
    assert layer.kind == kind and layer.scale == pytest.approx(scale)
    out = np.asarray(layer(x.astype("float32")))
    want = np.arcsinh(x[:, 1] / scale) if kind == "asinh" else np.cbrt(x[:, 1] / scale)
    np.testing.assert_allclose(out[:, 0], x[:, 0], rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], want, rtol=1e-5)
    # on isotherms the field is X1: the same transform on the first column, X2 passes through, saved too
    swapped = x[:, ::-1].copy()
    model = network.with_target_scaling(network.build_model(2, 8, swapped, kind, column=0), 3.0, 2.0)
    model.save(path)
    layer = _inner(keras.saving.load_model(path, safe_mode=True, compile=False))
    assert (layer.kind, layer.column) == (kind, 0) and layer.scale == pytest.approx(scale)
    out = np.asarray(layer(swapped.astype("float32")))
    np.testing.assert_allclose(out[:, 0], want, rtol=1e-5)
    np.testing.assert_allclose(out[:, 1], swapped[:, 1], rtol=1e-6)


def test_transform_scale_follows_the_data() -> None:
    # asinh: the lowest non-zero field, but not below 1/1000 of the range (a remanent few-Oe reading)
    assert network.x2_transform_scale("asinh", [0, 100, 1000, 50000]) == pytest.approx(100)
    assert network.x2_transform_scale("asinh", [3, 1000, 50000]) == pytest.approx(49.997)
    assert network.x2_transform_scale("cbrt", [-2, 1, 5]) == pytest.approx(5)
    assert network.x2_transform_scale("linear", [1, 5]) == 1.0
    with pytest.raises(ValueError, match="unknown X2 transform 'log'"):
        network.x2_transform_scale("log", [1, 2])


def test_space_setting_checked_and_round_tripped() -> None:
    space = SearchSpace(x2_transforms=("linear", "cbrt"))
    assert SearchSpace.from_dict(space.to_dict()) == space
    assert SearchSpace.from_dict({}).x2_transforms == (network.DEFAULT_X2_TRANSFORM,)  # older projects
    with pytest.raises(SpaceError, match="x2 transform must be among linear, asinh, cbrt; got log"):
        SearchSpace(x2_transforms=("log",))


def test_search_refinement_and_folds_keep_the_transform(sqlite_url) -> None:
    space = tiny_space(epochs=20, patience=20, min_resource=1000, keep_models=2, seed=3,
                       x2_transforms=("linear", "cbrt"))
    projects.create_project(sqlite_url, "t", demo_data(), space=space, n_trials=4)
    assert workers.run_worker(sqlite_url, "t", exit_when_idle=True, threads=1, poll_seconds=0.1) == 4
    study = projects.open_project(sqlite_url, "t").study()
    picked = {t.number: t.params["x2_transform"] for t in study.trials}
    assert set(picked.values()) <= {"linear", "cbrt"}
    assert all(t.user_attrs["x2_transform"] == picked[t.number] for t in study.trials)

    def stored_kinds():
        return {m.trial_number: (_inner(m.model).kind if _inner(m.model) else "linear")
                for m in models.load_best(projects.open_project(sqlite_url, "t"), k=2)}

    assert all(kind == picked[n] for n, kind in stored_kinds().items())
    refine.refine_project(projects.open_project(sqlite_url, "t"), epochs=5, seeds=1)
    assert all(kind == picked[n] for n, kind in stored_kinds().items())  # the refinement retrained it as searched
    assert uncertainty.calibrate_project(projects.open_project(sqlite_url, "t"))
    settings = projects.open_project(sqlite_url, "t").study().user_attrs["calibration"]
    best = models.ranked(projects.open_project(sqlite_url, "t"))[0]
    assert settings["reference"] == best and settings["params"]["x2_transform"] == picked[best]
    folds = models.load(projects.open_project(sqlite_url, "t"), [-1 - k for k in range(len(settings["folds"]))])
    assert len(folds) == len(settings["folds"]) == 6  # 8 fields: 6 interior, all held out
    assert all((_inner(f.model).kind if _inner(f.model) else "linear") == picked[best] for f in folds)
    # the folds never join the ensemble, and refinement's pruning leaves them alone
    assert all(n >= 0 for n in models.values(projects.open_project(sqlite_url, "t")))
    assert not uncertainty.calibrate_project(projects.open_project(sqlite_url, "t"))  # up to date: nothing to do
