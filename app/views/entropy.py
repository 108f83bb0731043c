"""Entropy: |ΔS_M|(T) from the simulated fine grid beside the coarse data and interpolation baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import common
from mat_interp_core import baselines, dataset, entropy, simulate, uncertainty


_SOURCES = {"linear": "linear interpolation along H", "pchip": "PCHIP along H", "spline": "cubic spline along H",
            "rbf": "RBF surface", "krr": "kernel ridge", "forest": "random forest", "mlp": "MLP (scikit-learn)"}
_NETWORK = "network (simulated grid)"
_COARSE = "coarse data (measured fields only)"
_DS_TITLE = "|ΔS_M| (J kg⁻¹ K⁻¹)"
# Warn when μ0ΔH step / T step exceeds this: a transition moving up to 2 K/T with the field then shifts by more
# than one temperature step per field step, and |ΔS_M| from the grid turns into a comb (ErCo2 moves ~1.5 K/T).
COMB_RATIO_T_PER_K = 0.5
SPIKY = 1.1  # spikiness (total variation / 2 peak) above which a curve is called spiky


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
    m_unit = c2.selectbox(f"M unit ({common.md(project.y_name)})", entropy.M_UNITS, key="w_e_m_unit", **common.KEEP)
    h_unit = c3.selectbox(f"H unit ({common.md(project.x2_name)})", entropy.H_UNITS, key="w_e_h_unit", **common.KEEP)
    if m_unit == "muB/f.u.":
        molar = c4.number_input("Molar mass (g/mol)", min_value=0.0, step=0.1, key="w_e_molar", **common.KEEP)
        mass = None
    else:
        mass = c4.number_input("Sample mass (mg)", min_value=0.0, step=0.01, format="%.4f",
                               key="w_e_mass", **common.KEEP,
                               disabled=m_unit != "emu", help="Used when M is in emu.")
        molar = None
    st.caption(f"{common.md(project.x1_name)} is taken as the temperature in K. Conversions: M → A·m²/kg "
               "(emu ÷ mass in g), field → μ0H in T (Oe ÷ 10⁴, kOe ÷ 10, A/m × 4π·10⁻⁷); |ΔS_M| in J/(kg·K).")
    if units.get("x1") not in (None, "", "K"):
        st.warning(f"the unit of {common.md(project.x1_name)} is {common.md(repr(units.get('x1')))}; "
                   "|ΔS_M| assumes kelvin.")
    try:
        dhs = dataset.parse_values(dh_text, what="the field changes ΔH")
    except dataset.DataError as err:
        st.error(common.md(err))
        return None
    return dict(t_col=project.x1_name, h_col=project.x2_name, m_col=project.y_name, m_unit=m_unit, h_unit=h_unit,
                mass_mg=(mass or None) if m_unit == "emu" else None,
                molar_mass_g=(molar or None) if m_unit == "muB/f.u." else None, dh_tesla=dhs)


def _grid_widgets(project, data, kw: dict) -> dict | None:
    """T step, field step and ensemble size of the page's own grid (defaults: what the integral needs)."""
    x, _ = data.arrays()
    x[:, 1] = data.x2_set_point  # the grid spans the set points, not the jittering read-backs
    if st.session_state.get("_entropy_grid_for") != (project.id, kw["h_unit"]):
        st.session_state["_entropy_grid_for"] = (project.id, kw["h_unit"])
        try:
            t_axis, h_axis = entropy.fine_axes(x[:, 0], x[:, 1], h_unit=kw["h_unit"])
        except ValueError as err:
            st.error(common.md(err))
            return None
        # the library's choice, to one significant digit (0.0995 K -> 0.1 K)
        st.session_state["w_e_t_step"] = float(f"{np.median(np.diff(t_axis)):.1g}")
        st.session_state["w_e_h_step"] = float(f"{entropy.to_tesla(np.median(np.diff(h_axis)), kw['h_unit']):.1g}")
        st.session_state["w_e_k"] = simulate.default_k(project)  # the same models as every other front end
    c1, c2, c3 = st.columns(3)
    t_step = c1.number_input(f"Temperature step (K) of the grid", min_value=0.001, step=0.05, format="%.3f",
                             key="w_e_t_step", **common.KEEP)
    h_step = c2.number_input("Field step μ0ΔH (T) of the grid", min_value=0.001, step=0.01, format="%.3f",
                             key="w_e_h_step", **common.KEEP)
    k = c3.number_input("Ensemble of the best K models", min_value=1, max_value=max(1, project.space.keep_models),
                        step=1, key="w_e_k", **common.KEEP,
                        help="1: the best model; K > 1: |ΔS_M| of the mean prediction with the members' spread.")
    st.caption("The page simulates its own grid for the integral (the Simulate page's grid is not used): the "
               "defaults, min(0.1 K, measured spacing / 5) × 0.02 T, keep the integral's own error well under 1 %. "
               "Simulated points are cheap.")
    if t_step is None or h_step is None:
        st.error("Give both steps of the grid.")
        return None
    if h_step > COMB_RATIO_T_PER_K * t_step:
        st.warning(
            f"A field step of {h_step:g} T is coarse for a temperature step of {t_step:g} K: where the transition "
            f"moves with the field (a first-order transition), |ΔS_M| from such a grid is a comb of spikes. "
            f"Use a field step ≤ {COMB_RATIO_T_PER_K * t_step:.3g} T (or a larger temperature step).")
    return {"t_step": float(t_step), "h_step_t": float(h_step), "k": int(k)}


def _cached(key: tuple, compute):
    """A |ΔS_M| result kept in the session per grid, model and units (recomputed only when they change)."""
    store = st.session_state.setdefault("_entropy_results", {})
    if key not in store:
        if len(store) > 8:  # keep the session small
            store.clear()
        store[key] = compute()
    return store[key]


def _network(url: str, project, data, units, kw: dict, grid: dict):
    """|ΔS_M| of the chosen models with the calibrated band (the library's one |ΔS_M| report)."""
    model = common.predictor(url, project, grid["k"])
    key = ("network", project.id, common.model_label(model), units, tuple(kw["dh_tesla"]), grid["t_step"],
           grid["h_step_t"], uncertainty.calibration_status(url, project.name))
    return model, _cached(key, lambda: simulate.project_entropy(
        url, project.name, units, dh_tesla=kw["dh_tesla"], t_step=grid["t_step"], h_step_t=grid["h_step_t"],
        max_points=common.settings().max_grid_points, model=model))


def _baseline(which: str, project, data, units, kw: dict, grid: dict):
    """The baseline fitted on the training data, on the same grid as the network."""
    x, y = data.arrays()
    x[:, 1] = data.x2_set_point  # baselines along X2 work on the set points
    key = (which, project.id, units, tuple(kw["dh_tesla"]), grid["t_step"], grid["h_step_t"])
    return _cached(key, lambda: entropy.simulated_delta_s(
        baselines.BASELINES[which]().fit(x[:, 0], x[:, 1], y), x[:, 0], x[:, 1], units, dh_tesla=kw["dh_tesla"],
        t_step=grid["t_step"], h_step_t=grid["h_step_t"], max_points=common.settings().max_grid_points))


def _curves(label: str, frame: pd.DataFrame, kw: dict) -> pd.DataFrame | None:
    try:
        return entropy.delta_s(frame, **kw).assign(source=label)
    except (ValueError, KeyError) as err:  # UnitError is a ValueError
        st.error(f"{label}: {common.md(err)}")
        return None


def _measure_next(net, kw: dict, project, data) -> None:
    """Which field to measure next: the gaps whose filling would shrink the band at the peak the most."""
    st.subheader("Measure next")
    cal = net.calibration
    if cal is None or not cal.calibrated:
        st.info(f"No ranking without a calibrated band: {common.md(getattr(cal, 'reason', 'no band'))}.")
        return
    table = uncertainty.suggestions(cal, list(net.figures["dH_T"]), list(net.figures["T_peak_K"]))
    if table.empty:
        st.info("The held-out evidence shows no gap worth filling over these field changes.")
        return
    unit = kw["h_unit"]
    st.caption(f"{common.md(project.x2_name)} values to measure next, best first: the middle of a gap between measured "
               "fields (as the networks see the field axis), ranked by how much the band at the |ΔS_M| peak would "
               "shrink, averaged over the field changes above. Measured: "
               + ", ".join(f"{v:g}" for v in data.x2_values) + f" {unit}.")
    st.dataframe(table.head(5), hide_index=True, column_config={
        "x2": st.column_config.NumberColumn(f"measure at ({unit})", format="%.4g"),
        "gap_from": st.column_config.NumberColumn(f"between ({unit})", format="%g"),
        "gap_to": st.column_config.NumberColumn(f"and ({unit})", format="%g"),
        "reduction": st.column_config.NumberColumn("band shrinks by (J/kg K)", format="%.3f"),
        "reduction_pct": st.column_config.NumberColumn("% of the band", format="%.0f"),
    })


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
        st.info(f"Project {common.md(project.name)} was not marked as magnetisation on the Data page.")
        common.init("w_e_force", False)
        if not st.checkbox(f"Treat {common.md(project.y_name)} as magnetisation M(T, H) anyway", key="w_e_force", **common.KEEP):
            return
    try:
        data = common.training_data(url, project)
    except common.DB_ERRORS as err:
        common.db_unavailable(err)
        return
    kw = _unit_widgets(project, units)
    if kw is None:
        return
    try:
        magnet = entropy.MagnetUnits(kw["m_unit"], kw["h_unit"], kw["mass_mg"], kw["molar_mass_g"])
    except entropy.UnitError as err:
        st.error(common.md(err))
        return
    st.subheader("Grid")
    grid = _grid_widgets(project, data, kw)
    if grid is None:
        return
    with common.reported(also=(ValueError,)) as call, st.spinner("Simulating the grid and integrating…"):
        model, net = _network(url, project, data, magnet, kw, grid)
    if not call.ok:
        return
    step_t = float(entropy.to_tesla(np.median(np.diff(net.h_axis)), kw["h_unit"])) if net.h_axis.size > 1 else 0.0
    st.caption(f"Grid: {net.t_axis.size:,} × {net.h_axis.size:,} points (ΔT = {grid['t_step']:g} K, "
               f"μ0ΔH = {step_t:.3g} T) from the {net.models}.")
    spiky = net.figures[net.figures["spikiness"] > SPIKY]
    if len(spiky):
        worst = spiky.loc[spiky["spikiness"].idxmax()]
        st.warning(
            f"|ΔS_M|(T) of the simulated grid is not a clean single peak at ΔH = "
            f"{', '.join(f'{v:g}' for v in spiky['dH_T'])} T (spikiness up to {worst['spikiness']:.2f} at "
            f"{worst['dH_T']:g} T; 1.0 is a clean peak). For a material with one transition the wiggles come from "
            "the grid (a field step coarse against the temperature step) or from the networks: compare the "
            "ensemble's band and the members' peak spread below, or train more trials.")

    st.subheader("Compare with")
    b = st.columns(len(_SOURCES))
    chosen = []
    for col, (which, label) in zip(b, _SOURCES.items()):
        common.init(f"w_e_bl_{which}", False)
        if col.checkbox(label, key=f"w_e_bl_{which}", **common.KEEP,
                        help="Fitted on the training data, evaluated on the same grid."):
            chosen.append(which)

    parts = [net.curves.assign(source=_NETWORK), _curves(_COARSE, data.frame.assign(**{data.x2_name: data.x2_set_point}), kw)]
    for which in chosen:
        try:
            with st.spinner(f"Fitting the {_SOURCES[which]} baseline…"):
                parts.append(_baseline(which, project, data, magnet, kw, grid).curves.assign(source=_SOURCES[which]))
        except ValueError as err:
            st.error(f"{_SOURCES[which]}: {common.md(err)}")
    curves = pd.concat([p for p in parts if p is not None], ignore_index=True)

    st.subheader("|ΔS_M|(T)")
    calibrated = net.calibration is not None and net.calibration.calibrated
    main_sources = [s for s in (_NETWORK, _COARSE) if s in set(curves["source"])]
    fig_main = common.fig_lines(curves[curves["source"].isin(main_sources)], "T_K", "dS_J_per_kgK", group="dH_T",
                                style="source", title="|ΔS_M|(T): simulated grid (solid) and coarse data (dashed)"
                                + (" with its calibrated 90 % band" if calibrated else " (band not calibrated)"),
                                x_title="T (K)", y_title=_DS_TITLE, group_fmt=lambda v: f"ΔH = {v:g} T",
                                std="dS_band" if calibrated else None)
    st.plotly_chart(fig_main, key="entropy_main")
    if calibrated:
        st.caption("The band is an error bar: a nominal 90 % interval for the simulated |ΔS_M|, calibrated on held-out "
                   "evidence. Each interior measured field was left out in turn and the best configuration retrained "
                   "without it; how far its |ΔS_M| moved across that gap, carried through ∂M/∂T and the field "
                   "integral and scaled to each gap's width, gives the band. Its factor was set on a few synthetic "
                   "magnets, and it cannot see a bias that the held-out fits share across a wide gap (README, "
                   "bench/method.py). The ensemble members' spread is not shown: they share the method's bias.")
    else:
        st.warning(f"The band is not calibrated: {common.md(net.calibration.reason)}.")
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
    common.init("w_e_lifts", ", ".join(f"{v:g}" for v in entropy.DEFAULT_LIFTS_K))
    lift_text = st.text_input("TEC temperature spans ΔT_lift (K)", key="w_e_lifts", **common.KEEP,
                              help="TEC(ΔT_lift): the largest mean |ΔS_M| over any ΔT_lift-wide temperature window.")
    try:
        lifts = entropy.parse_lifts(dataset.parse_values(lift_text, what="the TEC spans ΔT_lift"))
    except ValueError as err:  # DataError is a ValueError
        st.error(common.md(err))
        lifts = entropy.DEFAULT_LIFTS_K
    band = [c for c in ("peak_band", "peak_std", "T_peak_std") if c in net.figures]
    merits = pd.concat(
        [entropy.with_tec(net.figures, net.curves, lifts)
         .drop(columns=[c for c in ("members", "peak_mean", "T_peak_mean") if c in net.figures])
         .assign(source=_NETWORK)]
        + [entropy.figures_of_merit(part, lifts).assign(source=src)
           for src, part in curves[curves["source"] != _NETWORK].groupby("source", sort=False)],
        ignore_index=True,
    )
    rest = [c for c in merits.columns if c not in ("source", "dH_T", "peak_J_per_kgK", "T_peak_K", "spikiness", *band)]
    merits = merits[["source", "dH_T", "peak_J_per_kgK", "T_peak_K", "spikiness", *band, *rest]]  # the key ones first
    st.dataframe(merits, hide_index=True, height=min(36 * (len(merits) + 1) + 4, 800), column_config={
        "dH_T": st.column_config.NumberColumn("ΔH (T)", format="%g"),
        "peak_J_per_kgK": st.column_config.NumberColumn("peak |ΔS_M| (J/kg K)", format="%.4f"),
        "T_peak_K": st.column_config.NumberColumn("T at peak (K)", format="%.2f"),
        "FWHM_K": st.column_config.NumberColumn("FWHM (K)", format="%.2f"),
        "RCP_J_per_kg": st.column_config.NumberColumn("RCP (J/kg)", format="%.2f"),
        "RC_J_per_kg": st.column_config.NumberColumn("RC (J/kg)", format="%.2f"),
        **{entropy.tec_column(v): st.column_config.NumberColumn(f"TEC({v:g} K) (J/kg K)", format="%.4f")
           for v in lifts},
        "spikiness": st.column_config.NumberColumn("spikiness", format="%.3f",
                                                   help="Total variation / (2 × peak): 1 for a clean single peak."),
        "peak_band": st.column_config.NumberColumn("peak ± band (90 %)", format="%.4f",
                                                   help="Half-width of the calibrated band at the peak (empty: "
                                                        "not calibrated)."),
        "peak_std": st.column_config.NumberColumn("peak ± (members' std)", format="%.4f",
                                                  help="Standard deviation of the ensemble members' peaks."),
        "T_peak_std": st.column_config.NumberColumn("T at peak ± (K)", format="%.2f",
                                                    help="Standard deviation of the members' peak temperatures."),
    })

    _measure_next(net, kw, project, data)

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
