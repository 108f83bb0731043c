"""Data: load CSV or Quantum Design .dat files (or the demo), choose X1 / X2 / Y, set points, sweep branch,
check it, set the units and mass (read from the files, overridable), look at it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import common
import figures
import fmt
import session
from mat_interp_core import dataset, entropy, readers, setpoints, synthetic
from mat_interp_core.dataset import DataError


_UNIT_KEYS = ("w_unit_x1", "w_unit_x2", "w_unit_y", "w_mag", "w_mass", "w_m_unit", "w_h_unit", "w_molar", "w_t_role")


def _load(source_id: str, name: str, files: list, *, demo: bool = False) -> None:
    """Read new source files (merged) into the session and forget the column choices of the previous ones."""
    settings = session.settings()
    try:
        with st.spinner(f"Reading {name}…"):
            loaded = readers.load(files, max_mb=settings.max_upload_mb)
        st.session_state[session.SOURCE] = {"id": source_id, "name": name, "frame": loaded.frame, "loaded": loaded,
                                           "error": None, "demo": demo}
    except DataError as err:
        st.session_state[session.SOURCE] = {"id": source_id, "name": name, "frame": None, "error": str(err),
                                           "demo": demo}
    for key in ("w_x1", "w_x2", "w_y", "w_x2_values", "w_drop", "w_sp_tol", "w_sweep", *_UNIT_KEYS, "_x2_for",
                "_units_for"):
        st.session_state.pop(key, None)
    st.session_state.pop(session.DATA, None)


def _source_section() -> dict | None:
    left, right = st.columns([3, 1], vertical_alignment="center")
    with left:
        uploaded = st.file_uploader(
            "Drop CSV or Quantum Design .dat files here (one row per measured point, a header line naming the "
            "columns; several files of one sample, e.g. one per field, are merged)",
            type=["csv", "tsv", "txt", "dat"],
            key="upload",
            accept_multiple_files=True,
            help="Comma, semicolon or tab separated, UTF-8, or MPMS3 / MPMS-XL / PPMS .dat files. "
                 "Example columns: T (K), H (Oe), moment (emu).",
        )
    with right:
        demo = st.button(
            "Use the demo dataset", key="use_demo", icon=":material/science:",
            help=f"A mean-field ferromagnet (Tc = 35 K) measured at 8 fields from 0.01 to 5 T; "
                 f"sample mass {synthetic.DEMO_MASS_MG} mg.",
        )
        st.download_button(
            "Download the demo CSV", synthetic.demo_csv_bytes(), file_name="mat-interp-demo.csv", mime="text/csv",
            key="demo_csv", icon=":material/download:",
        )
    uploaded = [f for f in (uploaded or []) if f is not None]
    seen = tuple(f.file_id for f in uploaded)
    if uploaded and seen != st.session_state.get("_seen_upload"):
        st.session_state["_seen_upload"] = seen
        _load(f"upload:{':'.join(seen)}", ", ".join(f.name for f in uploaded), [(f.name, f.getvalue()) for f in uploaded])
    if demo:
        _load("demo", "demo.csv", [("demo.csv", synthetic.demo_csv_bytes())], demo=True)
    return st.session_state.get(session.SOURCE)


def _columns_section(src: dict) -> dataset.TrainingData | None:
    frame: pd.DataFrame = src["frame"]
    st.subheader(fmt.md(src["name"]))
    demo = " — synthetic demo data" if src.get("demo") else ""
    st.caption(f"{len(frame):,} rows × {frame.shape[1]} columns{demo}")
    with st.expander("Preview of the file", expanded=True):
        preview = frame.head(1000).copy()
        preview.attrs = {}  # read_table's bookkeeping (file line numbers) is not for display
        st.dataframe(preview, height=230, placeholder="—")
        if len(frame) > 1000:
            st.caption(f"first 1,000 of {len(frame):,} rows")
    loaded: readers.Loaded = src["loaded"]
    for note in loaded.notes:
        st.info(fmt.md(f"{note[:1].upper()}{note[1:]}."))
    session.init("w_sp_tol", setpoints.DEFAULT_TOLERANCE)
    tol = float(st.session_state["w_sp_tol"])
    try:
        g_x1, g_x2, g_y = readers.guess_columns(loaded, tol)
    except DataError as err:
        st.error(fmt.md(err))
        return None

    st.subheader("Columns")
    columns = list(frame.columns)
    session.choose("w_x1", columns, g_x1)
    session.choose("w_x2", columns, g_x2)
    session.choose("w_y", columns, g_y)
    c1, c2, c3 = st.columns(3)
    x1 = c1.selectbox("X1: the scanned axis (e.g. temperature)", columns, key="w_x1", **session.KEEP)
    x2 = c2.selectbox("X2: the few fixed values (e.g. field)", columns, key="w_x2", **session.KEEP)
    y = c3.selectbox("Y: the measured quantity", columns, key="w_y", **session.KEEP)

    roles = readers.guess_roles(loaded)
    if roles.temperature or roles.field:
        st.caption(fmt.md(
            f"Roles from the headers: temperature '{roles.temperature or '—'}', field '{roles.field or '—'}'"
            + (f"; protocol {roles.protocol(x2)}" if roles.protocol(x2) else "") + "."))
    tol = st.number_input(
        "Set-point tolerance (fraction of the spacing)", min_value=0.001, max_value=0.9, step=0.05, format="%.3f",
        key="w_sp_tol", **session.KEEP,
        help="Instruments read their set points back with noise: X2 readings form one set point when their spread "
             "is at most this fraction of the gap to the next set point. The networks train on the readings; "
             "curves, held-out choices, baselines and legends use the set points.",
    )
    x2_values = None
    try:
        raw = pd.to_numeric(frame[x2], errors="coerce").dropna().to_numpy(dtype=float) if x2 in frame else []
        raw_x2 = setpoints.group(raw, tol, column=x2).values if len(raw) else []
    except setpoints.SetPointError:
        raw_x2 = []  # validation below says why in one sentence
    if 2 <= len(raw_x2) <= 200:
        options = [float(v) for v in raw_x2]
        if st.session_state.get("_x2_for") != (src["id"], x2):
            st.session_state["_x2_for"] = (src["id"], x2)
            st.session_state["w_x2_values"] = list(options)
        else:
            st.session_state["w_x2_values"] = [v for v in st.session_state.get("w_x2_values", []) if v in options]
        chosen = st.multiselect(
            f"{fmt.md(x2)} values to train on", options, key="w_x2_values", **session.KEEP, format_func=lambda v: f"{v:g}",
            help="Leave a curve out to check later how well the model predicts it.",
        )
        if len(chosen) != len(options):
            x2_values = chosen
    elif len(raw_x2) > 200:
        st.caption(f"{fmt.md(x2)} has {len(raw_x2)} set points: all are used.")
    session.init("w_drop", False)
    drop = st.checkbox("Drop invalid rows (empty, NaN, infinite or huge values) instead of refusing the file",
                       key="w_drop", **session.KEEP)

    try:
        data, facts = readers.prepare(loaded, x1, x2, y, tolerance=tol, sweep=st.session_state.get("w_sweep"),
                                      drop_invalid=drop, x2_values=x2_values, roles=roles)
    except DataError as err:
        st.error(fmt.md(err))
        st.session_state.pop(session.DATA, None)
        if getattr(err, "sweep_first", False):  # a loop's negative fields (field as X1): the remedy is the box
            _sweep_box(["up", "down"], st.session_state.get("w_sweep"))
        return None
    if len(facts.get("notes", [])) or st.session_state.get("w_sweep"):
        for note in facts.get("notes", []):
            st.warning(fmt.md(f"{note[:1].upper()}{note[1:]}: a first-order material's hysteresis makes a mix "
                                 "meaningless, choose one branch."))
        _sweep_box([b for b, n in facts["branches"].items() if n], facts["sweep"])
    for note in facts.get("data_notes", []):
        st.info(fmt.md(f"{note[:1].upper()}{note[1:]}."))
    st.session_state[session.DATA] = data
    st.session_state["_facts"] = facts
    dropped = f"; {data.n_dropped} invalid rows dropped" if data.n_dropped else ""
    grouped = (f"; set points of jittering read-backs, grouped with tolerance {data.set_point_tol:g}"
               if data.set_points.jittered else "")
    branch = f"; {facts['sweep']} branch" if facts.get("notes") else ""
    st.success(
        f"Ready: {len(data.frame):,} points on {len(data.x2_values)} values of {fmt.md(x2)} "
        f"({', '.join(f'{v:.5g}' for v in data.x2_values[:12])}{', …' if len(data.x2_values) > 12 else ''})"
        f"{grouped}{branch}{dropped}."
    )
    if loaded.stderr and loaded.stderr in data.extra_names:
        err = data.frame[loaded.stderr].to_numpy(dtype=float)
        rel = np.nanmedian(np.abs(err / data.frame[data.y_name].to_numpy(dtype=float)))
        st.caption(fmt.md(f"Standard error of the moment kept from column '{loaded.stderr}' "
                             f"(median {rel:.2%} of the moment) and stored with the project."))
    return data


def _sweep_box(branches: list[str], chosen: str | None) -> None:
    """The sweep branch to train on: the file's branches, 'first' (each curve's first sweep) or 'all'; no choice
    shown (None) when a refused file had none yet, so that the page does not pick one for the user."""
    options = [*branches, "first", "all"]
    st.selectbox("Sweep branch to train on", options, key="w_sweep",
                 index=options.index(chosen) if chosen in options else None,
                 help="Found from the order of the rows: where X1 rises along a curve, and where it falls; first: "
                      "each curve's first sweep, up to its first turnaround (of a hysteresis loop, the virgin curve).")


def _units_section(src: dict, data: dataset.TrainingData) -> dict:
    st.subheader("Units")
    if st.session_state.get("_units_for") != (src["id"], data.x1_name, data.x2_name, data.y_name):
        st.session_state["_units_for"] = (src["id"], data.x1_name, data.x2_name, data.y_name)
        for key in _UNIT_KEYS:
            st.session_state.pop(key, None)
    u_x1, u_x2, u_y = (common.unit_from_name(c) for c in (data.x1_name, data.x2_name, data.y_name))
    session.init("w_unit_x1", u_x1 or "")
    session.init("w_unit_x2", u_x2 or "")
    session.init("w_unit_y", u_y or "")
    c1, c2, c3 = st.columns(3)
    unit_x1 = c1.text_input(f"Unit of X1 ({fmt.md(data.x1_name)})", key="w_unit_x1", **session.KEEP)
    unit_x2 = c2.text_input(f"Unit of X2 ({fmt.md(data.x2_name)})", key="w_unit_x2", **session.KEEP)
    unit_y = c3.text_input(f"Unit of Y ({fmt.md(data.y_name)})", key="w_unit_y", **session.KEEP)

    session.init("w_mag", common.looks_like_magnetisation(data.y_name, unit_y))
    magnetisation = st.checkbox(
        "This is magnetisation M(T, H): enables the magnetic entropy change |ΔS_M| (Entropy page)",
        key="w_mag", **session.KEEP,
    )
    loaded: readers.Loaded = src["loaded"]
    facts = dict(st.session_state.get("_facts") or {})
    units = {"x1": unit_x1, "x2": unit_x2, "y": unit_y, "magnetisation": magnetisation}
    if magnetisation:
        file_mass = loaded.mass_mg if loaded.mass_mg is not None else (
            float(synthetic.DEMO_MASS_MG) if src.get("demo") else None)
        session.init("w_mass", file_mass)
        t_default = "X2" if facts.get("temperature") == data.x2_name else "X1"
        session.init("w_t_role", t_default)
        t_role = st.radio("The temperature is", ["X1", "X2"], key="w_t_role", horizontal=True, **session.KEEP,
                          help="X1 for M(T) sweeps at fixed fields, X2 for isotherms M(H) at fixed temperatures; "
                               "the field is the other axis. |ΔS_M| works from either protocol.")
        field_unit = unit_x1 if t_role == "X2" else unit_x2
        m_typed, h_typed = readers.canonical_unit(unit_y), readers.canonical_unit(field_unit)  # 'EMU', 'tesla'
        session.init("w_m_unit", m_typed if m_typed in entropy.M_UNITS else entropy.M_UNITS[0])
        session.init("w_h_unit", h_typed if h_typed in entropy.H_UNITS else entropy.H_UNITS[0])
        m1, m2, m3, m4 = st.columns(4)
        m_unit = m1.selectbox("M unit", entropy.M_UNITS, key="w_m_unit", **session.KEEP)
        h_unit = m2.selectbox("H unit", entropy.H_UNITS, key="w_h_unit", **session.KEEP)
        mass = m3.number_input("Sample mass (mg)", min_value=0.0, step=0.01, format="%.4f", key="w_mass", **session.KEEP,
                               help="Needed when M is in emu: M [A·m²/kg] = moment [emu] / mass [g]. "
                                    "Read from the file's SAMPLE_MASS, else from a constant 'Mass (g)' data column, "
                                    "when it has one; overridable.")
        if loaded.mass_mg is not None:
            m3.caption(f"File: {loaded.mass_text}")
        molar = None
        if m_unit == "muB/f.u.":
            session.init("w_molar", None)
            molar = m4.number_input("Molar mass (g/mol of formula units)", min_value=0.0, step=0.1,
                                    key="w_molar", **session.KEEP)
        st.caption(
            "|ΔS_M| is reported in J/(kg·K): M is converted to A·m²/kg (emu ÷ mass in g; emu/g = A·m²/kg) and the "
            "field to μ0H in tesla (Oe ÷ 10⁴, kOe ÷ 10, mT ÷ 10³, A/m × 4π·10⁻⁷). The temperature is in kelvin."
        )
        if m_unit == "emu" and not mass:
            st.warning("M is in emu: enter the sample mass to get |ΔS_M| per kilogram.")
        t_col, h_col = (data.x2_name, data.x1_name) if t_role == "X2" else (data.x1_name, data.x2_name)
        facts.update({"temperature": t_col, "field": h_col, "protocol": "M(H)" if t_role == "X2" else "M(T)"})
        units.update({"mass_mg": mass or None, "m_unit": m_unit, "h_unit": h_unit, "molar_mass_g": molar or None})
    try:
        stored = readers.project_units(loaded, data, facts, x1_unit=unit_x1, x2_unit=unit_x2, y_unit=unit_y,
                                       mass_mg=units.get("mass_mg"), molar_mass_g=units.get("molar_mass_g"))
    except DataError as err:
        st.error(fmt.md(err))
        st.session_state.pop(session.DATA, None)
        return units
    units = {**stored, **units}  # what the page shows wins over what the files said
    st.session_state[session.UNITS] = units
    return units


def _plots(data: dataset.TrainingData, units: dict) -> None:
    st.subheader("Plots")
    x1_t = common.unit_label(data.x1_name, units.get("x1"))
    x2_t = common.unit_label(data.x2_name, units.get("x2"))
    y_t = common.unit_label(data.y_name, units.get("y"))
    left, right = st.columns(2)
    with left:
        fig = figures.fig_curves(data.frame, data.x1_name, data.y_name, data.x2_name,
                                title=f"{data.y_name} vs {data.x1_name}", x_title=x1_t, y_title=y_t,
                                mode="markers+lines", group_title=x2_t)
        st.plotly_chart(fig, key="data_curves")
    with right:
        fig = figures.fig_heatmap(data.frame, data.x1_name, data.x2_name, data.y_name, rows_as_categories=True,
                                 title=f"{data.y_name} over ({data.x1_name}, {data.x2_name})",
                                 x_title=x1_t, y_title=f"{x2_t} (measured curves, not to scale)", z_title=y_t)
        st.plotly_chart(fig, key="data_heatmap")


def main() -> None:
    st.title("Data")
    st.caption("Load the coarse measurement Y(X1, X2) the model learns from. Nothing is stored until you start "
               "training on the Train page.")
    session.show_flash()
    src = _source_section()
    if not src:
        st.info("No data yet: drop a CSV file above or use the demo dataset.")
        return
    if src["error"]:
        st.error(fmt.md(src["error"]))
        return
    data = _columns_section(src)
    if data is None:
        return
    units = _units_section(src, data)
    _plots(data, units)
    st.page_link("views/train.py", label="Next: train a model on this data", icon=":material/arrow_forward:")


main()
