"""Entropy: |ΔS_M|(T) from the simulated fine grid beside the coarse data and interpolation baselines."""

from __future__ import annotations

import uuid

import pandas as pd
import streamlit as st

import common
from mat_interp_core import baselines, dataset, entropy, simulate


_SOURCES = {"linear": "linear interpolation along H", "pchip": "PCHIP along H", "rbf": "RBF surface"}
_NETWORK = "network (simulated grid)"
_COARSE = "coarse data (measured fields only)"
_DS_TITLE = "|ΔS_M| (J kg⁻¹ K⁻¹)"


def _unit_widgets(project, units: dict) -> dict | None:
    if st.session_state.get("_entropy_for") != project.id:
        st.session_state["_entropy_for"] = project.id
        st.session_state["w_e_dh"] = "1, 2, 3, 4, 5"
        st.session_state["w_e_m_unit"] = units.get("m_unit") if units.get("m_unit") in entropy.M_UNITS else (
            units.get("y") if units.get("y") in entropy.M_UNITS else entropy.M_UNITS[0])
        st.session_state["w_e_h_unit"] = units.get("h_unit") if units.get("h_unit") in entropy.H_UNITS else (
            units.get("x2") if units.get("x2") in entropy.H_UNITS else entropy.H_UNITS[0])
        st.session_state["w_e_mass"] = units.get("mass_mg")
        st.session_state["w_e_molar"] = units.get("molar_mass_g")
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
    dh_text = c1.text_input("Field changes μ0ΔH (T), from the lowest field", key="w_e_dh", **common.KEEP)
    m_unit = c2.selectbox(f"M unit ({project.y_name})", entropy.M_UNITS, key="w_e_m_unit", **common.KEEP)
    h_unit = c3.selectbox(f"H unit ({project.x2_name})", entropy.H_UNITS, key="w_e_h_unit", **common.KEEP)
    if m_unit == "muB/f.u.":
        molar = c4.number_input("Molar mass (g/mol)", min_value=0.0, step=0.1, key="w_e_molar", **common.KEEP)
        mass = None
    else:
        mass = c4.number_input("Sample mass (mg)", min_value=0.0, step=0.01, format="%.4f",
                               key="w_e_mass", **common.KEEP,
                               disabled=m_unit != "emu", help="Used when M is in emu.")
        molar = None
    st.caption(f"{project.x1_name} is taken as the temperature in K. Conversions: M → A·m²/kg "
               "(emu ÷ mass in g), field → μ0H in T (Oe ÷ 10⁴, kOe ÷ 10, A/m × 4π·10⁻⁷); |ΔS_M| in J/(kg·K).")
    if units.get("x1") not in (None, "", "K"):
        st.warning(f"the unit of {project.x1_name} is {units.get('x1')!r}; |ΔS_M| assumes kelvin.")
    try:
        dhs = dataset.parse_values(dh_text, what="the field changes ΔH")
    except dataset.DataError as err:
        st.error(str(err))
        return None
    return dict(t_col=project.x1_name, h_col=project.x2_name, m_col=project.y_name, m_unit=m_unit, h_unit=h_unit,
                mass_mg=(mass or None) if m_unit == "emu" else None,
                molar_mass_g=(molar or None) if m_unit == "muB/f.u." else None, dh_tesla=dhs)


def _fine_grid(project, data, h_unit: str, url: str) -> None:
    """Simulate a grid fine enough for |ΔS_M|: X1 step 1/5 of the measured spacing, fields every 0.02–0.05 T."""
    settings = common.settings()
    t = data.frame[project.x1_name]
    ax1, _ = common.even_axis(float(t.min()), float(t.max()), common.x1_spacing(data) / 5)
    tesla = float(entropy.to_tesla(1.0, h_unit))
    lo, hi = float(data.x2_values[0]), float(data.x2_values[-1])
    step_t = min(0.05, max(0.02, (hi - lo) * tesla / 100))
    ax2, _ = common.even_axis(lo, hi, step_t / tesla)
    model = common.predictor(url, project, 1)
    frame = simulate.simulate(url, project.name, ax1, ax2, k=1, max_points=settings.max_grid_points, model=model)
    st.session_state[common.SIM] = {
        "id": uuid.uuid4().hex, "project": project.name, "project_id": project.id, "k": 1, "frame": frame,
        "x1": ax1, "x2": ax2, "model": common.model_label(model),
    }


def _baseline_grid(which: str, sim: dict, project, data, url: str) -> pd.DataFrame:
    """The baseline fitted on the training data, predicted on the simulated grid (kept per grid)."""
    store = st.session_state.setdefault("_baseline_grids", {})
    key = (sim["id"], which)
    if key not in store:
        x, y = data.arrays()
        model = baselines.BASELINES[which]().fit(x[:, 0], x[:, 1], y)
        if len(store) > 6:  # keep the session small
            store.clear()
        store[key] = simulate.simulate(url, project.name, sim["x1"], sim["x2"], model=model,
                                       max_points=common.settings().max_grid_points)
    return store[key]


def _curves(label: str, frame: pd.DataFrame, kw: dict) -> pd.DataFrame | None:
    try:
        return entropy.delta_s(frame, **kw).assign(source=label)
    except (ValueError, KeyError) as err:  # UnitError is a ValueError
        st.error(f"{label}: {err}")
        return None


def main() -> None:
    st.title("Entropy")
    st.caption("Magnetic entropy change from the Maxwell relation, ΔS_M(T, ΔH) = ∫ (∂M/∂T)_H d(μ0H), "
               "integrated from the lowest measured field.")
    common.show_flash()
    project = common.pick_project("w_entropy_project")
    if project is None:
        return
    url = common.db_url()
    units = common.project_units(project)
    if not units.get("magnetisation"):
        st.info(f"Project {project.name} was not marked as magnetisation on the Data page.")
        common.init("w_e_force", False)
        if not st.checkbox(f"Treat {project.y_name} as magnetisation M(T, H) anyway", key="w_e_force", **common.KEEP):
            return
    try:
        data = common.training_data(url, project)
    except common.DB_ERRORS as err:
        common.db_unavailable(err)
        return
    kw = _unit_widgets(project, units)
    if kw is None:
        return

    sim = st.session_state.get(common.SIM)
    if not sim or sim["project_id"] != project.id:
        st.info("There is no simulated grid of this project yet (Simulate page). The button below simulates one "
                "fine enough for |ΔS_M|: temperature step 1/5 of the measured spacing, fields every 0.02–0.05 T.")
        if st.button("Simulate a fine grid", key="e_simulate", type="primary", icon=":material/grid_on:"):
            try:
                with st.spinner("Simulating a fine grid with the best model…"):
                    _fine_grid(project, data, kw["h_unit"], url)
            except common.USER_ERRORS as err:
                st.error(str(err))
            except common.DB_ERRORS as err:
                common.db_unavailable(err)
        sim = st.session_state.get(common.SIM)
        if not sim or sim["project_id"] != project.id:
            return
    st.caption(f"Grid: {sim['x1'].size:,} × {sim['x2'].size:,} points from {sim['model']}.")

    st.subheader("Compare with")
    b = st.columns(len(_SOURCES))
    chosen = []
    for col, (which, label) in zip(b, _SOURCES.items()):
        common.init(f"w_e_bl_{which}", False)
        if col.checkbox(label, key=f"w_e_bl_{which}", **common.KEEP,
                        help="Fitted on the training data, evaluated on the same grid."):
            chosen.append(which)

    parts = [_curves(_NETWORK, sim["frame"], kw), _curves(_COARSE, data.frame, kw)]
    for which in chosen:
        try:
            with st.spinner(f"Fitting the {_SOURCES[which]} baseline…"):
                grid = _baseline_grid(which, sim, project, data, url)
        except (ValueError, common.DB_ERRORS) as err:
            st.error(f"{_SOURCES[which]}: {err}")
            continue
        parts.append(_curves(_SOURCES[which], grid, kw))
    parts = [p for p in parts if p is not None]
    if not parts:
        return
    curves = pd.concat(parts, ignore_index=True)

    st.subheader("|ΔS_M|(T)")
    main_sources = [s for s in (_NETWORK, _COARSE) if s in set(curves["source"])]
    fig_main = common.fig_lines(curves[curves["source"].isin(main_sources)], "T_K", "dS_J_per_kgK", group="dH_T",
                                style="source", title="|ΔS_M|(T): simulated grid (solid) and coarse data (dashed)",
                                x_title="T (K)", y_title=_DS_TITLE, group_fmt=lambda v: f"ΔH = {v:g} T")
    st.plotly_chart(fig_main, key="entropy_main")
    figs = {"entropy": fig_main}
    if chosen:
        dh_values = sorted(curves["dH_T"].unique())
        common.choose("w_e_cmp_dh", dh_values, dh_values[-1])
        dh = st.selectbox("Compare the methods at ΔH (T)", dh_values, key="w_e_cmp_dh", **common.KEEP,
                          format_func=lambda v: f"{v:g}")
        fig_cmp = common.fig_lines(curves[curves["dH_T"] == dh], "T_K", "dS_J_per_kgK", group="source",
                                   title=f"|ΔS_M|(T) at ΔH = {dh:g} T by method", x_title="T (K)", y_title=_DS_TITLE)
        st.plotly_chart(fig_cmp, key="entropy_compare")
        figs["entropy-compare"] = fig_cmp

    st.subheader("Figures of merit")
    merits = pd.concat(
        [entropy.figures_of_merit(part).assign(source=src) for src, part in curves.groupby("source", sort=False)],
        ignore_index=True,
    )
    merits = merits[["source", *[c for c in merits.columns if c != "source"]]]
    st.dataframe(merits, hide_index=True, height=min(36 * (len(merits) + 1) + 4, 800), column_config={
        "dH_T": st.column_config.NumberColumn("ΔH (T)", format="%g"),
        "peak_J_per_kgK": st.column_config.NumberColumn("peak |ΔS_M| (J/kg K)", format="%.4f"),
        "T_peak_K": st.column_config.NumberColumn("T at peak (K)", format="%.2f"),
        "FWHM_K": st.column_config.NumberColumn("FWHM (K)", format="%.2f"),
        "RCP_J_per_kg": st.column_config.NumberColumn("RCP (J/kg)", format="%.2f"),
        "RC_J_per_kg": st.column_config.NumberColumn("RC (J/kg)", format="%.2f"),
        "spikiness": st.column_config.NumberColumn("spikiness", format="%.3f",
                                                   help="Total variation / (2 × peak): 1 for a clean single peak."),
    })

    st.subheader("Downloads")
    d = st.columns(2 + len(figs))
    with d[0]:
        common.download_csv(curves, "|ΔS_M| curves (CSV)", f"{project.name}-delta-s.csv", key="dl_ds")
    with d[1]:
        common.download_csv(merits, "Figures of merit (CSV)", f"{project.name}-figures-of-merit.csv", key="dl_fom")
    for col, (stem, fig) in zip(d[2:], figs.items()):
        with col:
            common.download_html(fig, f"Plot {stem} (HTML)", f"{project.name}-{stem}.html", key=f"dl_{stem}")
    st.caption("PNG: use the camera icon in each plot's toolbar (top right of the plot).")


main()
