"""Entropy: |ΔS_M|(T) from the simulated fine grid beside the coarse data and interpolation baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import common
import figures
import fmt
import session
from mat_interp_core import choice, dataset, entropy, isotherms, report, simulate, uncertainty

_SOURCES = report.BASELINE_LABELS
_NETWORK = report.NETWORK
_COARSE = report.COARSE
_DS_TITLE = "|ΔS_M| (J kg⁻¹ K⁻¹)"
_UNIT_FIELDS = {"m_unit": "'M unit'", "h_unit": "'H unit'", "mass_mg": "'Sample mass (mg)'",
                "molar_mass_g": "'Molar mass (g/mol)'"}  # the page's names of the library's unit settings


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
    dh_text = c1.text_input("Field changes μ0ΔH (T), from the lowest field", key="w_e_dh", **session.KEEP)
    m_unit = c2.selectbox(f"M unit ({fmt.md(project.y_name)})", entropy.M_UNITS, key="w_e_m_unit", **session.KEEP)
    t_name, h_name = report.roles(project)
    h_unit = c3.selectbox(f"H unit ({fmt.md(h_name)})", entropy.H_UNITS, key="w_e_h_unit", **session.KEEP)
    if m_unit == "muB/f.u.":
        molar = c4.number_input("Molar mass (g/mol)", min_value=0.0, step=0.1, key="w_e_molar", **session.KEEP)
        mass = None
    else:
        mass = c4.number_input("Sample mass (mg)", min_value=0.0, step=0.01, format="%.4f",
                               key="w_e_mass", **session.KEEP,
                               disabled=m_unit != "emu", help="Used when M is in emu.")
        molar = None
    st.caption(f"{fmt.md(t_name)} is taken as the temperature in K. Conversions: M → A·m²/kg "
               "(emu ÷ mass in g), field → μ0H in T (Oe ÷ 10⁴, kOe ÷ 10, mT ÷ 10³, A/m × 4π·10⁻⁷); |ΔS_M| in J/(kg·K).")
    try:
        dhs = dataset.parse_values(dh_text, what="the field changes ΔH")
    except dataset.DataError as err:
        st.error(fmt.md(err))
        return None
    return dict(t_col=project.x1_name, h_col=project.x2_name, m_col=project.y_name, m_unit=m_unit, h_unit=h_unit,
                mass_mg=(mass or None) if m_unit == "emu" else None,
                molar_mass_g=(molar or None) if m_unit == "muB/f.u." else None, dh_tesla=dhs)


def _grid_widgets(project, kw: dict) -> dict | None:
    """T step, field step and ensemble size of the page's own grid (defaults: what the integral needs)."""
    if st.session_state.get("_entropy_grid_for") != (project.id, kw["h_unit"]):
        st.session_state["_entropy_grid_for"] = (project.id, kw["h_unit"])
        try:
            st.session_state["w_e_t_step"], st.session_state["w_e_h_step"] = report.default_steps(project, kw["h_unit"])
        except ValueError as err:
            st.error(fmt.md(err))
            return None
        st.session_state["w_e_k"] = simulate.default_k(project)  # the same models as every other front end
    c1, c2, c3 = st.columns(3)
    t_step = c1.number_input(f"Temperature step (K) of the grid", min_value=0.001, step=0.05, format="%.3f",
                             key="w_e_t_step", **session.KEEP)
    h_step = c2.number_input("Field step μ0ΔH (T) of the grid", min_value=0.001, step=0.01, format="%.3f",
                             key="w_e_h_step", **session.KEEP)
    k = c3.number_input("Ensemble of the best K models", min_value=1, max_value=max(1, project.space.keep_models),
                        step=1, key="w_e_k", **session.KEEP,
                        help="The default (every kept model) answers with the default method below, with its band; "
                             "another K: |ΔS_M| of the mean of the best K networks.")
    st.caption("The page simulates its own grid for the integral (the Simulate page's grid is not used): the "
               "defaults, min(0.1 K, measured spacing / 5) × 0.02 T, keep the integral's own error well under 1 %. "
               "Simulated points are cheap.")
    if t_step is None or h_step is None:
        st.error("Give both steps of the grid.")
        return None
    for warning in report.grid_warnings(float(t_step), float(h_step)):
        st.warning(warning)
    return {"t_step": float(t_step), "h_step_t": float(h_step), "k": int(k),
            "answer": _answer_widget(project, kw["h_unit"])}


def _answer_widget(project, h_unit: str) -> str | None:
    """Which method answers: None for the default (``choice.default``: as `mat-interp entropy`), else a key of
    ``simulate.answers`` (as `entropy --answer KEY`)."""
    keys = ("default", *simulate.answers(project))
    if st.session_state.get("w_e_answer") not in keys:
        st.session_state["w_e_answer"] = "default"
    isotherm = isotherms.is_isotherm(project.units)
    fields = None if isotherm else entropy.to_tesla(common.training_data(project).x2_values, h_unit)
    default, smooth = choice.default(fields), choice.default(fields, smooth=True)
    either = "" if smooth == default else f", or the {choice.label(smooth)} for readings that barely scatter"
    labels = {"default": f"the {choice.label(default)}{either} (default)", "held-out": "the smallest held-out error"}
    answer = st.selectbox("Answer with", keys, key="w_e_answer", **session.KEEP,
                          format_func=lambda key: labels.get(key) or choice.label(key, isotherm),
                          help="The method whose |ΔS_M| answers, with the band of its own held-out folds (needs the "
                               "default ensemble size and the stored folds). The default is the rule chosen on the "
                               "family benchmark (README).")
    return None if answer == "default" else answer


def _cached(key: tuple, compute):
    """A |ΔS_M| result kept in the session per grid, model and units (recomputed only when they change)."""
    store = st.session_state.setdefault("_entropy_results", {})
    if key not in store:
        if len(store) > 8:  # keep the session small
            store.clear()
        store[key] = compute()
    return store[key]


def _network(project, units, kw: dict, grid: dict):
    """|ΔS_M| of the project's answer with its calibrated band (report.network_entropy), kept per grid and
    models: at the default K the default answer (as `mat-interp entropy`), else the best K networks."""
    model = common.predictor(project, grid["k"])
    default = grid["k"] == simulate.default_k(project)
    key = ("network", project.id, common.model_label(model), default, units, tuple(kw["dh_tesla"]), grid["t_step"],
           grid["h_step_t"], uncertainty.calibration_status(project), grid["answer"])
    return _cached(key, lambda: report.network_entropy(
        project, units, dh_tesla=kw["dh_tesla"], t_step=grid["t_step"], h_step_t=grid["h_step_t"],
        max_points=session.settings().max_grid_points, model=model, choose=default, answer=grid["answer"]))


def _choice(net) -> None:
    """Which method answers and the held-out scores of every candidate (the networks, baselines, their mean)."""
    table = net.choice
    if table is None:
        return
    st.subheader("Which method answers")
    st.caption(f"Answer: {fmt.md(net.models)}. Every candidate was held out on the same interior "
               f"{fmt.md('X2')} values (refitted without each, the networks by their fold models); the table gives "
               "the misfit at the held-out values carried to |ΔS_M| (README, the method's choices).")
    st.dataframe(table, hide_index=True, column_config={
        "error_J_per_kgK": st.column_config.NumberColumn("held-out |ΔS_M| error (J/kg K)", format="%.3g")})


def _baseline(which: str, project, units, kw: dict, grid: dict):
    """The baseline fitted on the training data, on the same grid as the network (report.baseline_entropy)."""
    key = (which, project.id, units, tuple(kw["dh_tesla"]), grid["t_step"], grid["h_step_t"])
    return _cached(key, lambda: report.baseline_entropy(
        project, which, units, dh_tesla=kw["dh_tesla"], t_step=grid["t_step"], h_step_t=grid["h_step_t"],
        max_points=session.settings().max_grid_points))


def _lifts() -> tuple[tuple[float, ...], str | None]:
    """The TEC spans of the field drawn under the figures (read before it is drawn: the report needs them)."""
    session.init("w_e_lifts", ", ".join(f"{v:g}" for v in entropy.DEFAULT_LIFTS_K))
    try:
        return entropy.parse_lifts(dataset.parse_values(st.session_state["w_e_lifts"],
                                                        what="the TEC spans ΔT_lift")), None
    except ValueError as err:  # DataError is a ValueError
        return entropy.DEFAULT_LIFTS_K, str(err)


def _measure_next(net, kw: dict, project, data) -> None:
    """Which field (isotherms: temperature) to measure next: the gaps whose filling would shrink the band most."""
    st.subheader("Measure next")
    cal = net.calibration
    if cal is None or not cal.calibrated:
        st.info(f"No ranking without a calibrated band: {fmt.md(getattr(cal, 'reason', 'no band'))}.")
        return
    table = uncertainty.result_suggestions(net)
    if table.empty:
        st.info("The held-out evidence shows no gap worth filling over these field changes.")
        return
    if cal.isotherm:
        unit = "K"
        st.caption(f"Temperatures ({fmt.md(project.x2_name)}) of the isotherms to measure next, best first: the "
                   "middle of a gap between measured isotherms, ranked by how much the band would shrink where it is "
                   "widest in that gap (an isotherm in the middle halves it), averaged over the field changes above. "
                   "Measured: " + ", ".join(f"{v:g}" for v in data.x2_values) + " K.")
    else:
        unit = kw["h_unit"]
        st.caption(f"{fmt.md(project.x2_name)} values to measure next, best first: the middle of a gap between "
                   "measured fields (as the networks see the field axis), or every field again in finer temperature "
                   "steps around the |ΔS_M| peaks, ranked by how much the band at the peak would shrink, averaged "
                   "over the field changes above. Measured: " + ", ".join(f"{v:g}" for v in data.x2_values)
                   + f" {unit}.")
    top = table.head(5)
    shown = pd.DataFrame({"measure": uncertainty.suggestion_text(top, unit), "reduction": top["reduction"],
                          "reduction_pct": top["reduction_pct"]})
    st.dataframe(shown, hide_index=True, placeholder="—", column_config={
        "measure": st.column_config.TextColumn("measure next"),
        "reduction": st.column_config.NumberColumn("band shrinks by (J/kg K)", format="%.3f"),
        "reduction_pct": st.column_config.NumberColumn("% of the band", format="%.0f"),
    })


def main() -> None:
    st.title("Entropy")
    st.caption("Magnetic entropy change from the Maxwell relation, ΔS_M(T, ΔH) = ∫ (∂M/∂T)_H d(μ0H), "
               "integrated from the lowest measured field.")
    session.show_flash()
    project = common.pick_project("w_entropy_project")
    if project is None:
        return
    units = common.project_units(project)
    if not units.get("magnetisation"):
        st.info(f"Project {fmt.md(project.name)} was not marked as magnetisation on the Data page.")
        session.init("w_e_force", False)
        if not st.checkbox(f"Treat {fmt.md(project.y_name)} as magnetisation M(T, H) anyway", key="w_e_force", **session.KEEP):
            return
    try:
        data = common.training_data(project)
    except session.DB_ERRORS as err:
        session.db_unavailable(err)
        return
    kw = _unit_widgets(project, units)
    if kw is None:
        return
    try:
        magnet = entropy.MagnetUnits(kw["m_unit"], kw["h_unit"], kw["mass_mg"], kw["molar_mass_g"])
    except entropy.UnitError as err:
        fields = [_UNIT_FIELDS[f] for f in err.fields if f in _UNIT_FIELDS]
        st.error(fmt.md(err) + (f" (the {', '.join(fields)} field{'s' if len(fields) > 1 else ''} above)"
                                if fields else ""))
        return
    st.subheader("Grid")
    grid = _grid_widgets(project, kw)
    if grid is None:
        return
    with session.reported(also=(ValueError,)) as call, st.spinner("Simulating the grid and integrating…"):
        net = _network(project, magnet, kw, grid)
    if not call.ok:
        return

    st.subheader("Compare with")
    b = st.columns(len(_SOURCES))
    chosen = []
    for col, (which, label) in zip(b, _SOURCES.items()):
        session.init(f"w_e_bl_{which}", False)
        if col.checkbox(label, key=f"w_e_bl_{which}", **session.KEEP,
                        help="Fitted on the training data, evaluated on the same grid."):
            chosen.append(which)
    others, errors = {}, {}
    try:
        others[_COARSE] = report.coarse_curves(project, magnet, kw["dh_tesla"])
    except (ValueError, KeyError) as err:  # UnitError is a ValueError
        errors[_COARSE] = str(err)
    for which in chosen:
        try:
            with st.spinner(f"Fitting the {_SOURCES[which]} baseline…"):
                others[_SOURCES[which]] = _baseline(which, project, magnet, kw, grid).curves
        except (ValueError, np.linalg.LinAlgError) as err:
            errors[_SOURCES[which]] = str(err)
    lifts, lift_error = _lifts()
    rep = report.assemble(project, magnet, net, others, lifts=lifts, errors=errors)
    st.caption(f"Grid: {fmt.md(rep.grid)}.")
    for label, reason in rep.errors.items():
        st.error(f"{label}: {fmt.md(reason)}")
    for warning in rep.warnings:
        st.warning(fmt.md(warning))
    curves = rep.curves

    st.subheader("|ΔS_M|(T)")
    calibrated = rep.calibrated
    main_sources = [s for s in (_NETWORK, _COARSE) if s in set(curves["source"])]
    fig_main = figures.fig_lines(curves[curves["source"].isin(main_sources)], "T_K", "dS_J_per_kgK", group="dH_T",
                                style="source", title="|ΔS_M|(T): the answer on the simulated grid (solid) and coarse data (dashed)"
                                + (" with its calibrated 90 % band" if calibrated else " (band not calibrated)"),
                                x_title="T (K)", y_title=_DS_TITLE, group_fmt=lambda v: f"ΔH = {v:g} T",
                                band=("dS_low", "dS_high") if calibrated else None)
    st.plotly_chart(fig_main, key="entropy_main")
    if calibrated and net.calibration.isotherm:
        st.caption("The band is an error bar: a nominal 90 % interval for the simulated |ΔS_M|, calibrated on held-out "
                   "evidence. Each interior isotherm was left out in turn and the answering method refitted without "
                   "it; its misfit at that temperature, integrated over the field up to each ΔH and divided by the "
                   "temperature gap, says how far |ΔS_M| can be off between measured temperatures, scaled to each "
                   "gap's width. The method refitted on every other field reading of each isotherm says how far the "
                   "field steps put it off (the difference, taken as the error of the measured step). It was checked "
                   "on six synthetic magnets (README).")
    elif calibrated:
        st.caption("The band is an error bar: a nominal 90 % interval for the simulated |ΔS_M|, calibrated on held-out "
                   "evidence. Each interior measured field was left out in turn and the answering method refitted "
                   "without it (the networks: their best configuration retrained); how far its |ΔS_M| moved across that gap, carried through ∂M/∂T and the field "
                   "integral and scaled to each gap's width, gives the band. Its factors were set on the family "
                   "benchmark's synthetic magnets: for the networks, whose retrained folds scatter more than they err, "
                   "a quarter of that width each way, and from a first field below 5 mT, where their peak came out "
                   "low on nearly every magnet (the cusp of |ΔS_M| at T_C rounded off), less below the answer and more above "
                   "it, unless the low-field equation of state answered near T_C (the answer above says so), which "
                   "keeps the cusp; near T_C below that equation's top field the band is then its own error on the family "
                   "benchmark, not the networks' folds. It cannot see a bias that the held-out fits share across a wide gap (README, bench/family.py). "
                   "The ensemble members' spread is not shown: they share the method's bias.")
    else:
        st.warning(f"The band is not calibrated: {fmt.md(getattr(net.calibration, 'reason', 'no held-out folds'))}.")
    for warning in net.warnings:
        st.warning(fmt.md(warning[0].upper() + warning[1:] + "."))
    figs = {"entropy": fig_main}
    if chosen:
        dh_values = sorted(curves["dH_T"].unique())
        session.choose("w_e_cmp_dh", dh_values, dh_values[-1])
        dh = st.selectbox("Compare the methods at ΔH (T)", dh_values, key="w_e_cmp_dh", **session.KEEP,
                          format_func=lambda v: f"{v:g}")
        fig_cmp = figures.fig_lines(curves[curves["dH_T"] == dh], "T_K", "dS_J_per_kgK", group="source",
                                   title=f"|ΔS_M|(T) at ΔH = {dh:g} T by method", x_title="T (K)", y_title=_DS_TITLE)
        st.plotly_chart(fig_cmp, key="entropy_compare")
        figs["entropy-compare"] = fig_cmp

    st.subheader("Figures of merit")
    st.text_input("TEC temperature spans ΔT_lift (K)", key="w_e_lifts", **session.KEEP,
                  help="TEC(ΔT_lift): the largest mean |ΔS_M| over any ΔT_lift-wide temperature window.")
    if lift_error:
        st.error(fmt.md(lift_error))
    merits = rep.figures
    st.dataframe(merits, hide_index=True, placeholder="—", height=min(36 * (len(merits) + 1) + 4, 800), column_config={
        "dH_T": st.column_config.NumberColumn("ΔH (T)", format="%g"),
        "peak_J_per_kgK": st.column_config.NumberColumn("peak |ΔS_M| (J/kg K)", format="%.4f"),
        "peak_low": st.column_config.NumberColumn("peak, band from", format="%.4f",
                                                  help="The low end of the calibrated 90 % band at the peak (empty: "
                                                       "not calibrated)."),
        "peak_high": st.column_config.NumberColumn("peak, band to", format="%.4f",
                                                   help="The high end of the calibrated 90 % band at the peak."),
        "T_peak_K": st.column_config.NumberColumn("T at peak (K)", format="%.2f"),
        **{f"T_peak_K_{end}": st.column_config.NumberColumn(f"T at peak, band {'from' if end == 'low' else 'to'}",
                                                            format="%.2f",
                                                            help="Where the peak of a curve inside the band can "
                                                                 "be: wide on a broad peak.")
           for end in ("low", "high")},
        "FWHM_K": st.column_config.NumberColumn("FWHM (K)", format="%.2f"),
        "RCP_J_per_kg": st.column_config.NumberColumn("RCP (J/kg)", format="%.2f"),
        "RC_J_per_kg": st.column_config.NumberColumn("RC (J/kg)", format="%.2f"),
        **{entropy.tec_column(v): st.column_config.NumberColumn(f"TEC({v:g} K) (J/kg K)", format="%.4f")
           for v in lifts},
        "spikiness": st.column_config.NumberColumn("spikiness", format="%.3f",
                                                   help="Total variation / (2 × peak): 1 for a clean single peak."),
        "peak_band": st.column_config.NumberColumn("band half-width", format="%.4f",
                                                   help="Half the calibrated 90 % band's width at the peak (the mean "
                                                        "of its reach below and above; empty: not calibrated)."),
        **{f"{c}_{end}": st.column_config.NumberColumn(f"{label}, band {'from' if end == 'low' else 'to'}",
                                                       format="%.4f" if c.startswith("TEC") else "%.2f",
                                                       help="The figure of the band's lower and upper edge curves "
                                                            "(the smaller, the larger).")
           for label, c in (*zip(("FWHM", "RCP", "RC"), entropy.BOUNDED_MERITS),
                            *((f"TEC({v:g} K)", entropy.tec_column(v)) for v in lifts)) for end in ("low", "high")},
        "peak_std": st.column_config.NumberColumn("peak ± (members' std)", format="%.4f",
                                                  help="Standard deviation of the ensemble members' peaks."),
        "T_peak_std": st.column_config.NumberColumn("T at peak ± (K)", format="%.2f",
                                                    help="Standard deviation of the members' peak temperatures."),
    })

    if "T_peak_K_low" in merits and merits["T_peak_K_low"].notna().any():
        st.caption("Over the band: FWHM, RCP, RC and TEC are those of the band's lower and upper edge curves; the "
                   "temperature at peak runs from the first to the last temperature where the upper edge reaches the "
                   "top of the lower edge, where the peak of any curve inside the band can be. On a broad, flat peak "
                   "that span is wide: the data cannot place the maximum more closely.")
    _choice(net)
    _measure_next(net, kw, project, data)

    st.subheader("Downloads")
    d = st.columns(2 + len(figs))
    with d[0]:
        figures.download_csv(curves, "|ΔS_M| curves (CSV)", f"{project.name}-delta-s.csv", key="dl_ds")
    with d[1]:
        figures.download_csv(merits, "Figures of merit (CSV)", f"{project.name}-figures-of-merit.csv", key="dl_fom")
    for col, (stem, fig) in zip(d[2:], figs.items()):
        with col:
            figures.download_html(fig, f"Plot {stem} (HTML)", f"{project.name}-{stem}.html", key=f"dl_{stem}")
    st.caption("PNG: use the camera icon in each plot's toolbar (top right of the plot).")


main()
