"""The Data page with instrument files (AppTest): Quantum Design .dat uploads, set points shown and adjustable,
units and mass read from the file, sweep branches, several files merged, provenance on the Projects page.

The files come from mat_interp_core.synthetic (MPMS3 layout); the app runs on a temporary SQLite database.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from helpers import tiny_space
from mat_interp_core import projects, synthetic

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")
T, H, M = "Temperature (K)", "Magnetic Field (Oe)", "Moment (emu)"


@pytest.fixture(scope="module")
def app_env(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("app_instrument")
    url = f"sqlite:///{base / 'app.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MAT_INTERP_DATABASE_URL", url)
        mp.setenv("MAT_INTERP_HOME", str(base / "home"))
        mp.setenv("MAT_INTERP_MAX_UPLOAD_MB", "200")
        yield url


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def upload(files) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.file_uploader(key="upload").set_value(files).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_dat_upload_shows_set_points_units_mass_and_stderr(app_env) -> None:
    raw = synthetic.quantum_design_dat()
    at = upload(("mt.dat", raw, "application/octet-stream"))
    assert not at.error, texts(at.error)
    assert (at.selectbox(key="w_x1").value, at.selectbox(key="w_x2").value, at.selectbox(key="w_y").value) == (T, H, M)
    ready = [s for s in texts(at.success) if s.startswith("Ready:")]
    assert ready and "697 points on 7 values of Magnetic Field (Oe)" in ready[0]
    assert "set points of jittering read-backs, grouped with tolerance 0.1" in ready[0]
    assert len(at.multiselect(key="w_x2_values").options) == 7
    assert any("Dropped 3 rows with an empty" in i for i in texts(at.info))
    assert any("Standard error of the moment kept" in c for c in texts(at.caption))
    # units and mass from the file, shown and overridable
    assert [at.text_input(key=k).value for k in ("w_unit_x1", "w_unit_x2", "w_unit_y")] == ["K", "Oe", "emu"]
    assert at.number_input(key="w_mass").value == pytest.approx(synthetic.DEMO_MASS_MG)
    assert at.radio(key="w_t_role").value == "X1"
    units = at.session_state["units"]
    assert units["sources"][0]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert (units["m_unit"], units["h_unit"], units["protocol"]) == ("emu", "Oe", "M(T)")
    at.number_input(key="w_mass").set_value(2.0).run()
    assert at.session_state["units"]["mass_mg"] == 2.0
    # the tolerance is a widget: too tight, and the page says why in one sentence
    at.number_input(key="w_sp_tol").set_value(0.001).run()
    assert any("set-point tolerance 0.001" in e for e in texts(at.error)), texts(at.error)
    assert "training_data" not in at.session_state
    at.number_input(key="w_sp_tol").set_value(0.1).run()
    assert not at.error and len(at.session_state["training_data"].x2_values) == 7


def test_both_sweep_branches_are_said_and_chosen(app_env) -> None:
    at = upload(("both.dat", synthetic.quantum_design_dat(branches="both", fields_Oe=(1000, 10000, 50000)),
                 "application/octet-stream"))
    assert any("the file has both branches" in w.lower() for w in texts(at.warning)), texts(at.warning)
    sweep = at.selectbox(key="w_sweep")
    assert set(sweep.options) == {"warming", "cooling", "first", "all"}
    default = len(at.session_state["training_data"].frame)
    sweep.set_value("all").run()
    assert len(at.session_state["training_data"].frame) > default
    assert at.session_state["units"]["sweep"] == "all"


def test_a_hysteresis_loop_is_refused_then_loads_with_the_sweep_branch_first(app_env) -> None:
    """Isotherms measured as loops 0 → 5 → −5 → 5 T: the page names the sweep branch 'first' and offers it,
    although the file was refused; chosen, each isotherm's virgin curve loads and 'first' is stored."""
    loop = np.r_[np.linspace(0, 50000, 11), np.linspace(45000, -50000, 20), np.linspace(-45000, 50000, 20)]
    rows = [f"{t:g},{h:g},{50 * np.tanh(h / 20000 * 30 / (t - 10)):.6e}" for t in range(20, 61, 5) for h in loop]
    at = upload(("loop.csv", "\n".join(["T (K),H (Oe),M (emu/g)", *rows]).encode(), "text/csv"))
    assert any("the sweep branch 'first'" in e for e in texts(at.error)), texts(at.error)
    assert "training_data" not in at.session_state
    at.selectbox(key="w_sweep").set_value("first").run()
    assert not at.error, texts(at.error)
    data = at.session_state["training_data"]
    assert len(data.frame) == 9 * 11 and data.frame["H (Oe)"].min() == 0
    assert at.session_state["units"]["sweep"] == "first"


def test_the_sweep_branch_first_on_single_sweeps_says_it_kept_every_row(app_env) -> None:
    """M(T) at three fields, warming, cooling, warming: both branches, each curve one sweep; 'first' keeps them all
    and the page says so (it said nothing, as if 'first' had chosen something)."""
    temps = np.arange(20, 61, 2.0)
    rows = [f"{t:g},{h:g},{50 * np.tanh(h / 20000 * 30 / (t - 10)):.6e}"
            for i, h in enumerate((1000, 10000, 50000)) for t in (temps if i % 2 == 0 else temps[::-1])]
    at = upload(("alt.csv", "\n".join(["T (K),H (Oe),M (emu/g)", *rows]).encode(), "text/csv"))
    at.selectbox(key="w_sweep").set_value("first").run()
    assert not at.error, texts(at.error)
    assert len(at.session_state["training_data"].frame) == 3 * temps.size
    assert any("Every curve is already a single sweep (no turnaround), so 'first' kept all rows." in i
               for i in texts(at.info)), texts(at.info)


def test_emu_without_any_mass_is_refused_on_the_page(app_env) -> None:
    at = upload(("nomass.dat", synthetic.quantum_design_dat(mass_mg=None), "application/octet-stream"))
    assert any("is in emu but neither the file" in e for e in texts(at.error)), texts(at.error)
    assert "training_data" not in at.session_state
    at.number_input(key="w_mass").set_value(1.5).run()
    assert not at.error and at.session_state["units"]["mass_mg"] == 1.5


def test_several_files_merge_and_provenance_shows_on_the_projects_page(app_env) -> None:
    low = synthetic.quantum_design_dat(fields_Oe=(100, 1000, 5000), seed=1)
    high = synthetic.quantum_design_dat(fields_Oe=(10000, 20000, 50000), seed=2, remanence_Oe=0.0)
    at = upload([("low.dat", low, "application/octet-stream"), ("high.dat", high, "application/octet-stream")])
    assert not at.error, texts(at.error)
    data = at.session_state["training_data"]
    assert len(data.x2_values) == 6 and "source file" in data.extra_names
    units = at.session_state["units"]
    assert [s["name"] for s in units["sources"]] == ["low.dat", "high.dat"]
    projects.create_project(app_env, "two-files", data, space=tiny_space(), n_trials=1, units=units)
    at.switch_page("views/projects.py").run()
    at.selectbox(key="w_projects_pick").set_value("two-files").run()
    table = next(d.value for d in at.dataframe if "SHA-256" in d.value.columns)
    assert list(table["source file"]) == ["low.dat", "high.dat"]
    assert list(table["SHA-256"]) == [hashlib.sha256(low).hexdigest(), hashlib.sha256(high).hexdigest()]
    assert any("6 set points of Magnetic Field (Oe)" in c for c in texts(at.caption))
