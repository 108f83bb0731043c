"""Data: load a CSV (or the demo), choose X1 / X2 / Y, check it, set the units, look at it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import common
from mat_interp_core import dataset, entropy, synthetic
from mat_interp_core.dataset import DataError


_UNIT_KEYS = ("w_unit_x1", "w_unit_x2", "w_unit_y", "w_mag", "w_mass", "w_m_unit", "w_h_unit", "w_molar")


def _load(source_id: str, name: str, content, *, demo: bool = False) -> None:
    """Read a new source into the session and forget the column choices of the previous one."""
    settings = common.settings()
    try:
        with st.spinner(f"Reading {name}…"):
            frame = dataset.read_table(content, max_mb=settings.max_upload_mb, name=name)
        st.session_state[common.SOURCE] = {"id": source_id, "name": name, "frame": frame, "error": None, "demo": demo}
    except DataError as err:
        st.session_state[common.SOURCE] = {"id": source_id, "name": name, "frame": None, "error": str(err),
                                           "demo": demo}
    for key in ("w_x1", "w_x2", "w_y", "w_x2_values", "w_drop", *_UNIT_KEYS, "_x2_for", "_units_for"):
        st.session_state.pop(key, None)
    st.session_state.pop(common.DATA, None)


def _source_section() -> dict | None:
    left, right = st.columns([3, 1], vertical_alignment="center")
    with left:
        uploaded = st.file_uploader(
            "Drop a CSV file here (one row per measured point, a header line naming the columns)",
            type=["csv", "tsv", "txt", "dat"],
            key="upload",
            help="Comma, semicolon or tab separated, UTF-8. Example columns: T (K), H (Oe), moment (emu).",
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
    if uploaded is not None and uploaded.file_id != st.session_state.get("_seen_upload"):
        st.session_state["_seen_upload"] = uploaded.file_id
        _load(f"upload:{uploaded.file_id}", uploaded.name, uploaded)
    if demo:
        _load("demo", "demo.csv", synthetic.demo_csv_bytes(), demo=True)
    return st.session_state.get(common.SOURCE)


def _columns_section(src: dict) -> dataset.TrainingData | None:
    frame: pd.DataFrame = src["frame"]
    st.subheader(common.md(src["name"]))
    demo = " — synthetic demo data" if src.get("demo") else ""
    st.caption(f"{len(frame):,} rows × {frame.shape[1]} columns{demo}")
    with st.expander("Preview of the file", expanded=True):
        preview = frame.head(1000).copy()
        preview.attrs = {}  # read_table's bookkeeping (file line numbers) is not for display
        st.dataframe(preview, height=230)
        if len(frame) > 1000:
            st.caption(f"first 1,000 of {len(frame):,} rows")
    try:
        g_x1, g_x2, g_y = dataset.guess_columns(frame)
    except DataError as err:
        st.error(common.md(err))
        return None

    st.subheader("Columns")
    columns = list(frame.columns)
    common.choose("w_x1", columns, g_x1)
    common.choose("w_x2", columns, g_x2)
    common.choose("w_y", columns, g_y)
    c1, c2, c3 = st.columns(3)
    x1 = c1.selectbox("X1: the scanned axis (e.g. temperature)", columns, key="w_x1", **common.KEEP)
    x2 = c2.selectbox("X2: the few fixed values (e.g. field)", columns, key="w_x2", **common.KEEP)
    y = c3.selectbox("Y: the measured quantity", columns, key="w_y", **common.KEEP)

    x2_values = None
    raw_x2 = np.unique(pd.to_numeric(frame[x2], errors="coerce").dropna().to_numpy(dtype=float)) if x2 in frame else []
    if 2 <= len(raw_x2) <= 200:
        options = [float(v) for v in raw_x2]
        if st.session_state.get("_x2_for") != (src["id"], x2):
            st.session_state["_x2_for"] = (src["id"], x2)
            st.session_state["w_x2_values"] = list(options)
        else:
            st.session_state["w_x2_values"] = [v for v in st.session_state.get("w_x2_values", []) if v in options]
        chosen = st.multiselect(
            f"{common.md(x2)} values to train on", options, key="w_x2_values", **common.KEEP, format_func=lambda v: f"{v:g}",
            help="Leave a curve out to check later how well the model predicts it.",
        )
        if len(chosen) != len(options):
            x2_values = chosen
    elif len(raw_x2) > 200:
        st.caption(f"{common.md(x2)} has {len(raw_x2)} distinct values: all are used.")
    common.init("w_drop", False)
    drop = st.checkbox("Drop invalid rows (empty, NaN, infinite or huge values) instead of refusing the file",
                       key="w_drop", **common.KEEP)

    try:
        data = dataset.validate(frame, x1, x2, y, x2_values=x2_values, drop_invalid=drop)
    except DataError as err:
        st.error(common.md(err))
        st.session_state.pop(common.DATA, None)
        return None
    st.session_state[common.DATA] = data
    dropped = f"; {data.n_dropped} invalid rows dropped" if data.n_dropped else ""
    st.success(
        f"Ready: {len(data.frame):,} points on {len(data.x2_values)} values of {common.md(x2)} "
        f"({', '.join(f'{v:g}' for v in data.x2_values[:12])}{', …' if len(data.x2_values) > 12 else ''}){dropped}."
    )
    return data


def _units_section(src: dict, data: dataset.TrainingData) -> dict:
    st.subheader("Units")
    if st.session_state.get("_units_for") != (src["id"], data.x1_name, data.x2_name, data.y_name):
        st.session_state["_units_for"] = (src["id"], data.x1_name, data.x2_name, data.y_name)
        for key in _UNIT_KEYS:
            st.session_state.pop(key, None)
    u_x1, u_x2, u_y = (common.unit_from_name(c) for c in (data.x1_name, data.x2_name, data.y_name))
    common.init("w_unit_x1", u_x1 or "")
    common.init("w_unit_x2", u_x2 or "")
    common.init("w_unit_y", u_y or "")
    c1, c2, c3 = st.columns(3)
    unit_x1 = c1.text_input(f"Unit of X1 ({common.md(data.x1_name)})", key="w_unit_x1", **common.KEEP)
    unit_x2 = c2.text_input(f"Unit of X2 ({common.md(data.x2_name)})", key="w_unit_x2", **common.KEEP)
    unit_y = c3.text_input(f"Unit of Y ({common.md(data.y_name)})", key="w_unit_y", **common.KEEP)

    common.init("w_mag", common.looks_like_magnetisation(data.y_name, unit_y))
    magnetisation = st.checkbox(
        "This is magnetisation M(T, H): enables the magnetic entropy change |ΔS_M| (Entropy page)",
        key="w_mag", **common.KEEP,
    )
    units = {"x1": unit_x1, "x2": unit_x2, "y": unit_y, "magnetisation": magnetisation}
    if magnetisation:
        common.init("w_mass", float(synthetic.DEMO_MASS_MG) if src.get("demo") else None)
        common.init("w_m_unit", unit_y if unit_y in entropy.M_UNITS else entropy.M_UNITS[0])
        common.init("w_h_unit", unit_x2 if unit_x2 in entropy.H_UNITS else entropy.H_UNITS[0])
        m1, m2, m3, m4 = st.columns(4)
        m_unit = m1.selectbox("M unit", entropy.M_UNITS, key="w_m_unit", **common.KEEP)
        h_unit = m2.selectbox("H unit", entropy.H_UNITS, key="w_h_unit", **common.KEEP)
        mass = m3.number_input("Sample mass (mg)", min_value=0.0, step=0.01, format="%.4f", key="w_mass", **common.KEEP,
                               help="Needed when M is in emu: M [A·m²/kg] = moment [emu] / mass [g].")
        molar = None
        if m_unit == "muB/f.u.":
            common.init("w_molar", None)
            molar = m4.number_input("Molar mass (g/mol of formula units)", min_value=0.0, step=0.1,
                                    key="w_molar", **common.KEEP)
        st.caption(
            "|ΔS_M| is reported in J/(kg·K): M is converted to A·m²/kg (emu ÷ mass in g; emu/g = A·m²/kg) and the "
            "field to μ0H in tesla (Oe ÷ 10⁴, kOe ÷ 10, A/m × 4π·10⁻⁷). X1 must be the temperature in kelvin."
        )
        if m_unit == "emu" and not mass:
            st.warning("M is in emu: enter the sample mass to get |ΔS_M| per kilogram.")
        units.update({"mass_mg": mass or None, "m_unit": m_unit, "h_unit": h_unit, "molar_mass_g": molar or None})
    st.session_state[common.UNITS] = units
    return units


def _plots(data: dataset.TrainingData, units: dict) -> None:
    st.subheader("Plots")
    x1_t = common.unit_label(data.x1_name, units.get("x1"))
    x2_t = common.unit_label(data.x2_name, units.get("x2"))
    y_t = common.unit_label(data.y_name, units.get("y"))
    left, right = st.columns(2)
    with left:
        fig = common.fig_curves(data.frame, data.x1_name, data.y_name, data.x2_name,
                                title=f"{data.y_name} vs {data.x1_name}", x_title=x1_t, y_title=y_t,
                                mode="markers+lines")
        st.plotly_chart(fig, key="data_curves")
    with right:
        fig = common.fig_heatmap(data.frame, data.x1_name, data.x2_name, data.y_name, rows_as_categories=True,
                                 title=f"{data.y_name} over ({data.x1_name}, {data.x2_name})",
                                 x_title=x1_t, y_title=f"{x2_t} (measured curves, not to scale)", z_title=y_t)
        st.plotly_chart(fig, key="data_heatmap")


def main() -> None:
    st.title("Data")
    st.caption("Load the coarse measurement Y(X1, X2) the model learns from. Nothing is stored until you start "
               "training on the Train page.")
    common.show_flash()
    src = _source_section()
    if not src:
        st.info("No data yet: drop a CSV file above or use the demo dataset.")
        return
    if src["error"]:
        st.error(common.md(src["error"]))
        return
    data = _columns_section(src)
    if data is None:
        return
    units = _units_section(src, data)
    _plots(data, units)
    st.page_link("views/train.py", label="Next: train a model on this data", icon=":material/arrow_forward:")


main()
