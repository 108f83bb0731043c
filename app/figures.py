"""Plotly figures and download buttons built from library results."""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import sample_colorscale

import fmt


def _positions(n: int) -> list[float]:
    """Where n curves sit on a colour scale (its ends left out)."""
    return [0.2] if n <= 1 else [0.05 + 0.85 * i / (n - 1) for i in range(n)]


def colours(n: int, scale: str = "Viridis") -> list[str]:
    return sample_colorscale(scale, _positions(n))


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, height: int = 480) -> go.Figure:
    fig.update_layout(
        title=fmt.plain(title),
        xaxis_title=fmt.plain(x_title),
        yaxis_title=fmt.plain(y_title),
        height=height,
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(itemsizing="constant"),
        template="plotly_white",
    )
    return fig


def fig_curves(
    frame: pd.DataFrame,
    x: str,
    y: str,
    group: str,
    *,
    title: str,
    x_title: str | None = None,
    y_title: str | None = None,
    mode: str = "markers",
    std: str | None = None,
    overlay: pd.DataFrame | None = None,
    overlay_name: str = "measured",
    group_title: str | None = None,
    max_groups: int = 60,
) -> go.Figure:
    """One trace per value of `group` (coloured along a sequential scale), optional ±std band
    and an overlay of points from another frame with the same columns: each overlaid curve at its own
    `group` value, in the colour of that value on the same scale (never moved onto a drawn curve).
    `group_title`: the group's name with its unit, for the legend."""
    fig = go.Figure()
    values = np.unique(frame[group].to_numpy())
    if values.size > max_groups:  # keep the figure readable: an even subset of the curves
        values = values[np.unique(np.linspace(0, values.size - 1, max_groups).round().astype(int))]
    palette = colours(values.size)
    named = group_title or group
    for value, colour in zip(values, palette):
        part = frame[frame[group] == value].sort_values(x)
        label = fmt.plain(f"{named} = {value:g}")
        if std is not None and std in part:
            upper = part[y] + part[std]
            lower = part[y] - part[std]
            fig.add_trace(go.Scatter(x=part[x], y=upper, mode="lines", line=dict(width=0), showlegend=False,
                                     legendgroup=label, hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=part[x], y=lower, mode="lines", line=dict(width=0), fill="tonexty",
                                     fillcolor=_rgba(colour, 0.25), showlegend=False, legendgroup=label,
                                     hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=part[x], y=part[y], mode=mode, name=label, legendgroup=label,
            line=dict(color=colour, width=2), marker=dict(color=colour, size=5),
        ))
        if overlay is not None:
            near = overlay[np.isclose(overlay[group].to_numpy(dtype=float), float(value), rtol=1e-9, atol=0)]
            if len(near):
                fig.add_trace(go.Scatter(
                    x=near[x], y=near[y], mode="markers", name=f"{label} ({overlay_name})", legendgroup=label,
                    marker=dict(color=colour, size=6, symbol="circle-open", line=dict(width=1.5)),
                    showlegend=False,
                ))
    if overlay is not None and len(values):
        _overlay_between(fig, overlay, x, y, group, values, named, overlay_name)
    return _layout(fig, title, x_title or x, y_title or y)


def _overlay_between(fig: go.Figure, overlay: pd.DataFrame, x: str, y: str, group: str, values: np.ndarray,
                     named: str, overlay_name: str) -> None:
    """The overlay's curves whose `group` value is none of the drawn `values`: each at its own value, coloured
    where that value falls on the drawn curves' scale, with its own legend entry."""
    drawn = np.asarray(values, dtype=float)
    positions = _positions(drawn.size)
    for value in np.unique(overlay[group].to_numpy(dtype=float)):
        if np.isclose(drawn, value, rtol=1e-9, atol=0).any():
            continue  # drawn above, in its curve's colour
        colour = sample_colorscale("Viridis", [float(np.interp(value, drawn, positions))])[0]
        part = overlay[overlay[group].to_numpy(dtype=float) == value].sort_values(x)
        fig.add_trace(go.Scatter(
            x=part[x], y=part[y], mode="markers", name=fmt.plain(f"{named} = {value:g} ({overlay_name})"),
            marker=dict(color=colour, size=6, symbol="circle-open", line=dict(width=1.5)),
        ))


def _rgba(colour: str, alpha: float) -> str:
    """'rgb(r, g, b)' or '#rrggbb' -> 'rgba(r, g, b, alpha)'."""
    colour = colour.strip()
    if colour.startswith("#") and len(colour) == 7:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(float(v)) for v in re.findall(r"[\d.]+", colour)[:3])
    return f"rgba({r}, {g}, {b}, {alpha})"


def fig_heatmap(
    frame: pd.DataFrame,
    x: str,
    y: str,
    z: str,
    *,
    title: str,
    x_title: str | None = None,
    y_title: str | None = None,
    z_title: str | None = None,
    rows_as_categories: bool = False,
    max_cells: int = 80_000,
    colorscale: str = "Viridis",
) -> go.Figure:
    """Heatmap of z over (x, y) from a long frame.

    A full grid is sent as a matrix, thinned evenly to about ``max_cells`` cells
    for display only. Scattered data (every X2 curve with its own X1 values) is
    averaged into X1 bins for display, plotly filling empty bins
    (``connectgaps``); ``rows_as_categories`` gives every curve a row of equal height.
    """
    data = frame[[x, y, z]]
    xs = np.unique(data[x].to_numpy())
    ys = np.unique(data[y].to_numpy())
    hover = (f"{fmt.plain(x_title or x)}: %{{x}}<br>{fmt.plain(y_title or y)}: %{{y}}<br>{fmt.plain(z_title or z)}: "
             "%{z}<extra></extra>")
    colorbar = dict(title=dict(text=fmt.plain(z_title or z), side="right"))
    if len(data) == xs.size * ys.size and not rows_as_categories:
        matrix = data.pivot_table(index=y, columns=x, values=z, aggfunc="first")
        thin = max(1, math.ceil(math.sqrt(matrix.size / max_cells)))
        matrix = matrix.iloc[::thin, ::thin]
        trace = go.Heatmap(x=matrix.columns.to_numpy(), y=matrix.index.to_numpy(), z=matrix.to_numpy(),
                           colorscale=colorscale, colorbar=colorbar, hovertemplate=hover)
    else:
        # Scattered X1 (every curve sampled at its own X1 values): put X1 into as many
        # bins as a curve has points, so each row has about one value per column.
        per_row = int(data.groupby(y)[x].size().median())
        n_bins = int(np.clip(per_row, 10, max(10, max_cells // max(1, ys.size))))
        edges = np.linspace(xs[0], xs[-1], n_bins + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        column = np.clip(np.searchsorted(edges, data[x].to_numpy(), side="right") - 1, 0, n_bins - 1)
        binned = data.assign(**{x: centres[column]}).pivot_table(index=y, columns=x, values=z, aggfunc="mean")
        binned = binned.reindex(columns=centres)
        rows = [f"{v:g}" for v in binned.index] if rows_as_categories else binned.index.to_numpy()
        trace = go.Heatmap(x=binned.columns.to_numpy(), y=rows, z=binned.to_numpy(), colorscale=colorscale,
                           connectgaps=True, colorbar=colorbar, hovertemplate=hover)
    fig = go.Figure(trace)
    if rows_as_categories:
        fig.update_yaxes(type="category", categoryorder="array", categoryarray=[f"{v:g}" for v in ys])
    return _layout(fig, title, x_title or x, y_title or y, height=460)


def fig_learning_curves(curves: pd.DataFrame, *, metric: str, best_trial: int | None, y_range=None) -> go.Figure:
    """One line per trial; the best trial thick black; pruned trials dashed grey and failed ones dotted red,
    each kind as one line broken between trials (a study's many pruned trials cost one trace, not one each)."""
    traces = []  # plain dicts, added at once: a study of 200 trials costs ms, not 1-2 ms a trace
    groups = dict(list(curves.groupby("trial", sort=True))) if len(curves) else {}
    trials = list(groups)
    palette = colours(max(1, len(trials)), "Turbo")
    merged = {"PRUNED": (dict(color="rgb(150, 150, 150)", width=1, dash="dash"), []),
              "FAIL": (dict(color="rgb(214, 39, 40)", width=1, dash="dot"), [])}
    for colour, trial in zip(palette, trials):
        part = groups[trial]
        state = str(part["state"].iloc[0])
        if state in merged and trial != best_trial:
            merged[state][1].append(part)
            continue
        line, opacity = dict(color=colour, width=1.5), 0.9
        if trial == best_trial:
            line, opacity = dict(color="rgb(0, 0, 0)", width=3), 1.0
        traces.append(dict(
            type="scatter", x=part["epoch"].to_numpy(), y=part[metric].to_numpy(), mode="lines", line=line,
            opacity=opacity, name=f"#{trial} {state.lower()}" + (" (best)" if trial == best_trial else ""),
        ))
    for state, (line, parts) in merged.items():
        if not parts:
            continue
        nan = np.array([np.nan])
        x = np.concatenate([a for p in parts for a in (p["epoch"].to_numpy(dtype=float), nan)])
        y = np.concatenate([a for p in parts for a in (p[metric].to_numpy(dtype=float), nan)])
        who = np.concatenate([np.full(len(p) + 1, int(p["trial"].iloc[0])) for p in parts])
        traces.append(dict(
            type="scatter", x=x, y=y, mode="lines", line=line, opacity=0.6, connectgaps=False, customdata=who,
            name=f"{state.lower().replace('fail', 'failed')} ({len(parts)} trial{'s' if len(parts) != 1 else ''})",
            hovertemplate="#%{customdata}: epoch %{x}, %{y}<extra></extra>",
        ))
    fig = go.Figure(data=traces)
    fig = _layout(fig, f"{len(trials)} trial{'s' if len(trials) != 1 else ''}", "epoch",
                  "training R²" if metric == "r2" else "training loss (standardised MSE)")
    if metric == "loss":
        fig.update_yaxes(type="log")
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig


def r2_range(curves: pd.DataFrame, pad: float = 0.05) -> tuple[float, float] | None:
    """An R² axis range from the data: from the lowest latest R² of the running and complete trials (so a trial
    in its first epochs shows) to the highest R² reached, padded by ``pad`` of the span; None without values."""
    if curves.empty or "r2" not in curves:
        return None
    values = curves.dropna(subset=["r2"])
    values = values[np.isfinite(values["r2"].to_numpy(dtype=float))]
    if values.empty:
        return None
    latest = values.sort_values("epoch").groupby("trial").tail(1)
    live = latest[latest["state"].astype(str).isin(["RUNNING", "COMPLETE"])]
    lo = float((live if len(live) else latest)["r2"].min())
    hi = float(values["r2"].max())
    margin = max((hi - lo) * pad, 1e-4)
    return lo - margin, hi + margin


def fig_lines(
    frame: pd.DataFrame, x: str, y: str, *, group: str, style: str | None = None, title: str,
    x_title: str, y_title: str, group_fmt: Callable[[Any], str] = str, band: tuple[str, str] | None = None,
) -> go.Figure:
    """Lines coloured by `group`; `style` (e.g. the source of a curve) varies the dash; a band between the
    columns `band` = (lower edge, upper edge) where they have values."""
    fig = go.Figure()
    groups = list(pd.unique(frame[group]))
    palette = colours(len(groups), "Plasma")
    styles = list(pd.unique(frame[style])) if style else [None]
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    for g, colour in zip(groups, palette):
        for i, s in enumerate(styles):
            part = frame[frame[group] == g]
            if style:
                part = part[part[style] == s]
            if part.empty:
                continue
            part = part.sort_values(x)
            name = fmt.plain(group_fmt(g) + (f" — {s}" if style else ""))
            if band is not None and set(band) <= set(part) and part[band[0]].notna().any():
                for edge, fill in ((part[band[1]], None), (part[band[0]], "tonexty")):
                    fig.add_trace(go.Scatter(x=part[x], y=edge, mode="lines", line=dict(width=0), fill=fill,
                                             fillcolor=_rgba(colour, 0.25), showlegend=False, legendgroup=name,
                                             hoverinfo="skip"))
            fig.add_trace(go.Scatter(
                x=part[x], y=part[y], mode="lines", name=name, legendgroup=name,
                line=dict(color=colour, width=2.5 if i == 0 else 1.6, dash=dashes[i % len(dashes)]),
            ))
    return _layout(fig, title, x_title, y_title)


def download_html(fig: go.Figure, label: str, file_name: str, key: str) -> None:
    st.download_button(label, fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8"),  # opens offline
                       file_name=file_name, mime="text/html", key=key, icon=":material/download:")


def download_csv(frame: pd.DataFrame, label: str, file_name: str, key: str) -> None:
    st.download_button(label, frame.to_csv(index=False).encode("utf-8"), file_name=file_name,
                       mime="text/csv", key=key, icon=":material/download:")
