"""The |ΔS_M| report of a project: the one assembly behind the Entropy page and `mat-interp entropy`.

Both front ends ask the same question ("what is |ΔS_M| of this project, how sure is it, and how does it compare
with interpolating the data?") and only draw or print the :class:`EntropyReport` this module builds: the
network's curves with the calibrated band (:func:`mat_interp_core.simulate.project_entropy`), the coarse data's
own |ΔS_M| (the trapezoid on the measured fields) and any baselines, all on the same grid; one figures-of-merit
table for every source with the key columns first; the grid it used in words; and the warnings (a spiky curve, a
field step too coarse for the temperature step, X1 not in kelvin). Thresholds live here, not in a view.

The pieces (:func:`network_entropy`, :func:`coarse_curves`, :func:`baseline_entropy`) are separate so a page can
keep each in its cache and recompute only what a widget changed; :func:`assemble` puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from mat_interp_core import entropy, isotherms, simulate
from mat_interp_core.baselines import BASELINES, LABELS, make
from mat_interp_core.projects import ProjectHandle

NETWORK = "answer (simulated grid)"  # the networks, or the candidate that answers (choice)
COARSE = "coarse data (measured fields only)"
BASELINE_LABELS = LABELS
# Warn when μ0ΔH step / T step exceeds this: a transition moving up to 2 K/T with the field then shifts by more
# than one temperature step per field step, and |ΔS_M| from such a grid turns into a comb (ErCo2 moves ~1.5 K/T).
COMB_RATIO_T_PER_K = 0.5
SPIKY = 1.1  # spikiness (total variation / 2 peak) above which a curve is called spiky
KEY_COLUMNS = ("source", "dH_T", "peak_J_per_kgK", "peak_low", "peak_high", "T_peak_K", "spikiness", "peak_band",
               "peak_std", "T_peak_std")
_MEMBER_COLUMNS = ("members", "peak_mean", "T_peak_mean")


@dataclass
class EntropyReport:
    """What a front end shows for a project's |ΔS_M|: every source on one grid, their figures, the warnings."""

    network: entropy.SimulatedEntropy  # the product's answer: curves with dS_band, figures, calibration, models
    curves: pd.DataFrame  # T_K, dH_T, dS_J_per_kgK [, dS_band, dS_std ...], source — every source
    figures: pd.DataFrame  # figures of merit of every source, KEY_COLUMNS first, TEC for the chosen spans
    grid: str  # the grid and the models, in words
    warnings: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # source -> why it could not be computed

    @property
    def calibrated(self) -> bool:
        cal = self.network.calibration
        return cal is not None and cal.calibrated


def grid_warnings(t_step: float, h_step_t: float) -> list[str]:
    """Why a grid's steps would make |ΔS_M| a comb of spikes (empty when they are fine)."""
    if h_step_t > COMB_RATIO_T_PER_K * t_step:
        return [f"A field step of {h_step_t:g} T is coarse for a temperature step of {t_step:g} K: where the "
                "transition moves with the field (a first-order transition), |ΔS_M| from such a grid is a comb of "
                f"spikes. Use a field step ≤ {COMB_RATIO_T_PER_K * t_step:.3g} T (or a larger temperature step)."]
    return []


def roles(project: ProjectHandle) -> tuple[str, str]:
    """(temperature column, field column): X1 and X2 for M(T) sweeps, the other way round for isotherms."""
    if isotherms.is_isotherm(project.units):
        return project.x2_name, project.x1_name
    return project.x1_name, project.x2_name


def unit_warnings(project: ProjectHandle) -> list[str]:
    """The temperature is taken in kelvin: say so when the project stored another unit for it."""
    key = "x2" if isotherms.is_isotherm(project.units) else "x1"
    unit = (project.units or {}).get(key)
    if unit not in (None, "", "K"):
        return [f"the unit of {roles(project)[0]} is {unit!r}; |ΔS_M| assumes kelvin."]
    return []


def default_steps(project: ProjectHandle, h_unit: str) -> tuple[float, float]:
    """(T step in K, field step in T) of the grid the integral needs, to one significant digit (what
    :func:`entropy.fine_axes` picks for the project's data)."""
    data = project.data
    x, _ = data.arrays()
    t, h = isotherms.grid_span(data) if isotherms.is_isotherm(project.units) else (x[:, 0], data.x2_set_point)
    t_axis, h_axis = entropy.fine_axes(t, h, h_unit=h_unit)
    return (float(f"{np.median(np.diff(t_axis)):.1g}"),
            float(f"{entropy.to_tesla(np.median(np.diff(h_axis)), h_unit):.1g}"))


def network_entropy(project: ProjectHandle, units: entropy.MagnetUnits, **kwargs) -> entropy.SimulatedEntropy:
    """|ΔS_M| of the project's model set with the calibrated band (:func:`simulate.project_entropy`)."""
    return simulate.project_entropy(project, units, **kwargs)


def coarse_curves(project: ProjectHandle, units: entropy.MagnetUnits, dh_tesla=None,
                  method: str = "maxwell") -> pd.DataFrame:
    """|ΔS_M| of the measured data itself (trapezoid on the measured fields, curve by curve at the set points;
    isotherms are put on one field grid first): :func:`simulate.project_entropy` from the training data."""
    return simulate.project_entropy(project, units, dh_tesla=dh_tesla, source="training", method=method).curves


def baseline_entropy(project: ProjectHandle, which: str, units: entropy.MagnetUnits, *, dh_tesla=None,
                     t_step: float | None = None, h_step_t: float | None = None, method: str = "maxwell",
                     max_points: int = 5_000_000) -> entropy.SimulatedEntropy:
    """|ΔS_M| of a baseline (``baselines.make(which)``) fitted on the training data, on the network's grid."""
    if which not in BASELINES:
        raise ValueError(f"unknown baseline {which!r}; choose from {', '.join(BASELINES)}")
    x, y = project.data.arrays()
    model = make(which, isotherms.is_isotherm(project.units), units.h_unit)
    model.fit(x[:, 0], project.data.x2_set_point, y)  # along X2: the set points
    return simulate.model_entropy(project, model, units, dh_tesla=dh_tesla, t_step=t_step, h_step_t=h_step_t,
                                  method=method, max_points=max_points)


def assemble(project: ProjectHandle, units: entropy.MagnetUnits, network: entropy.SimulatedEntropy,
             others: dict[str, pd.DataFrame], *, lifts: Sequence[float] = entropy.DEFAULT_LIFTS_K,
             errors: dict[str, str] | None = None) -> EntropyReport:
    """The report from its pieces: `others` maps a source label (COARSE, a BASELINE_LABELS value) to its curves."""
    lifts = entropy.parse_lifts(lifts)
    curves = pd.concat([network.curves.assign(source=NETWORK)]
                       + [part.assign(source=label) for label, part in others.items()], ignore_index=True)
    answer = entropy.with_tec(network.figures, network.curves, lifts).drop(
        columns=[c for c in _MEMBER_COLUMNS if c in network.figures])
    if {"dS_low", "dS_high"} <= set(network.curves):  # the calibrated band: the other figures' bounds
        answer = answer.merge(entropy.merit_bounds(network.curves, lifts), on="dH_T", how="left")
    figures = pd.concat(
        [answer.assign(source=NETWORK)]
        + [entropy.figures_of_merit(part, lifts).assign(source=label) for label, part in others.items()],
        ignore_index=True)
    key = [c for c in KEY_COLUMNS if c in figures]
    figures = figures[key + [c for c in figures.columns if c not in key]]
    t_step = float(np.median(np.diff(network.t_axis))) if network.t_axis.size > 1 else float("nan")
    h_step = (float(entropy.to_tesla(np.median(np.diff(network.h_axis)), units.h_unit))
              if network.h_axis.size > 1 else float("nan"))
    grid = (f"{network.t_axis.size:,} × {network.h_axis.size:,} points (ΔT = {t_step:.2g} K, μ0ΔH = {h_step:.2g} T)"
            + (f" from the {network.models}" if network.models else ""))
    warnings = unit_warnings(project)
    spiky = network.figures[network.figures["spikiness"] > SPIKY]
    if len(spiky):
        worst = spiky.loc[spiky["spikiness"].idxmax()]
        warnings.append(
            f"|ΔS_M|(T) of the simulated grid is not a clean single peak at ΔH = "
            f"{', '.join(f'{v:g}' for v in spiky['dH_T'])} T (spikiness up to {worst['spikiness']:.2f} at "
            f"{worst['dH_T']:g} T; 1.0 is a clean peak). For a material with one transition the wiggles come from "
            "the grid (a field step coarse against the temperature step) or from the networks: compare the band and "
            "the members' peak spread, or train more trials.")
    return EntropyReport(network, curves, figures, grid, warnings, dict(errors or {}))


def entropy_report(project: ProjectHandle, units: entropy.MagnetUnits, *, dh_tesla=None, k: int | None = None,
                   t_step: float | None = None, h_step_t: float | None = None, method: str = "maxwell",
                   baselines: Sequence[str] = (), lifts: Sequence[float] = entropy.DEFAULT_LIFTS_K,
                   max_points: int = 5_000_000, model=None, answer: str | None = None) -> EntropyReport:
    """The whole report in one call: the answer (the project's model set, or `model`; `answer` names the
    candidate that answers, ``simulate.answers``), the coarse data and `baselines` (keys of
    ``baselines.BASELINES``) on the answer's grid. A baseline that fails is left out and its reason kept in
    ``errors``."""
    net = network_entropy(project, units, dh_tesla=dh_tesla, k=k, t_step=t_step, h_step_t=h_step_t, method=method,
                          max_points=max_points, model=model, answer=answer)
    dhs = sorted(net.curves["dH_T"].unique())
    others, errors = {}, {}
    try:
        others[COARSE] = coarse_curves(project, units, dhs, method)
    except (ValueError, KeyError) as err:
        errors[COARSE] = str(err)
    steps = dict(t_step=t_step, h_step_t=h_step_t)  # the network's own grid: fine_axes picks both when None
    for which in baselines:
        try:
            others[BASELINE_LABELS[which]] = baseline_entropy(project, which, units, dh_tesla=dhs, method=method,
                                                              max_points=max_points, **steps).curves
        except (ValueError, np.linalg.LinAlgError) as err:
            errors[BASELINE_LABELS.get(which, which)] = str(err)
    return assemble(project, units, net, others, lifts=lifts, errors=errors)
