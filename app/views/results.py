"""Results: the project's models (by default every kept one, as everywhere) against the training data."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

import common
import figures
import fmt
import session
from mat_interp_core import models, simulate



def main() -> None:
    st.title("Results")
    st.caption("The project's networks at the measured points: do they follow the data?")
    session.show_flash()
    project = common.pick_project("w_results_project")
    if project is None:
        return
    units = common.project_units(project)
    session.init("w_results_k", simulate.default_k(project))
    k = st.number_input("Ensemble of the best K models (1 = best model only; default: every kept model, as on the "
                        "Simulate and Entropy pages and in the CLI)", min_value=1,
                        max_value=max(1, project.space.keep_models), step=1, key="w_results_k", **session.KEEP)
    with session.reported("info") as call, st.spinner("Predicting at the training points…"):
        model = common.predictor(project, int(k))
        fit = simulate.fitted(project, k=int(k), model=model)
    if not call.ok:
        st.page_link("views/monitor.py", label="See its progress on the Monitor page", icon=":material/monitoring:")
        return

    x1, x2, y = project.x1_name, project.x2_name, project.y_name
    x1_t, x2_t, y_t = (common.unit_label(n, units.get(u)) for n, u in ((x1, "x1"), (x2, "x2"), (y, "y")))
    st.write(f"Model: {simulate.describe_models(project, model)}; {len(fit):,} training points.")
    best = (getattr(model, "members", None) or [model])[0]  # the models come best first
    st.metric("best model R²", fmt.fmt_value(best.value), help=f"Training R² of trial {best.trial_number}'s stored "
              "model (the refined one's once refined), as on the Projects page.")
    measured = fit.rename(columns={y: f"{y} model", f"{y} measured": y})

    fig = figures.fig_curves(fit, x1, y, x2, mode="lines", std=f"{y} std" if f"{y} std" in fit else None,
                            overlay=measured, title=f"Model (lines) over the measured data (circles)",
                            x_title=x1_t, y_title=y_t, group_title=x2_t)
    st.plotly_chart(fig, key="results_fit")

    left, right = st.columns(2)
    with left:
        res = go.Figure()
        values = sorted(fit[x2].unique())
        for value, colour in zip(values, figures.colours(len(values))):
            part = fit[fit[x2] == value]
            res.add_trace(go.Scatter(x=part[x1], y=part["residual"], mode="markers", name=fmt.plain(f"{x2_t} = {value:g}"),
                                     marker=dict(color=colour, size=4)))
        res.add_hline(y=0, line=dict(color="black", width=1))
        res.update_layout(title="Residuals (model − measured)", xaxis_title=fmt.plain(x1_t),
                          yaxis_title=fmt.plain(f"residual [{units.get('y') or y}]"), template="plotly_white", height=460,
                          margin=dict(l=60, r=20, t=50, b=50))
        st.plotly_chart(res, key="results_residuals")
    with right:
        st.plotly_chart(figures.fig_heatmap(fit, x1, x2, y, rows_as_categories=True, title="Fitted surface",
                                           x_title=x1_t, y_title=f"{x2_t} (measured curves)", z_title=y_t),
                        key="results_heatmap")

    d1, d2 = st.columns(2)
    with d1:
        figures.download_csv(fit, "Download fitted values and residuals (CSV)", f"{project.name}-fitted.csv",
                            key="dl_fitted")
    with d2:
        try:
            st.download_button("Download the best model (.keras)", models.best_bytes(project),
                               file_name=f"{project.name}-best.keras", mime="application/octet-stream",
                               key="dl_model", icon=":material/download:",
                               help="keras.saving.load_model(...).predict([[x1, x2]]) gives Y in your units.")
        except session.USER_ERRORS as err:
            st.caption(fmt.md(err))
    st.page_link("views/simulate.py", label="Next: simulate a fine grid", icon=":material/arrow_forward:")


main()
