"""|ΔS_M| from isotherms, M(H) at fixed temperatures: a role mapping in front of the Maxwell code.

A project records which of X1/X2 is the temperature and which the field
(``units['temperature']``, ``units['field']``: 'x1' or 'x2'). For M(T) sweeps at
fixed fields nothing changes. For isotherms (the temperature is X2, the set
points) the predictor is called with its arguments swapped so that
:func:`entropy.simulated_delta_s` sees a (T, H) predictor, and the grid spans
the isotherms' temperatures and the field range every isotherm covers; the
coarse-data result puts every isotherm on one field grid first, so the same
trapezoid integrates between the measured temperatures.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import entropy
from .dataset import TrainingData

__all__ = ["is_isotherm", "default_dh_tesla", "field_range", "grid_span", "held_out_integral", "on_one_field_grid", "peak_temperature", "isotherm_entropy"]


def is_isotherm(stored: Mapping[str, Any] | None) -> bool:
    """Whether a project's stored roles say the temperature is X2 (M(H) curves at fixed temperatures)."""
    return (stored or {}).get("temperature") == "x2"


class _Swapped:
    """A (field, temperature) predictor seen as (temperature, field)."""

    def __init__(self, model) -> None:
        self.model = model
        members = getattr(model, "members", None)
        self.members = [_Swapped(m) for m in members] if members else None

    def predict(self, t, h):
        return self.model.predict(h, t)


def field_range(data: TrainingData) -> tuple[float, float]:
    """The field range every isotherm covers (no extrapolation in H)."""
    h = data.frame[data.x1_name].to_numpy(dtype=float)
    labels = data.set_points.labels
    lows = [h[labels == k].min() for k in range(len(data.x2_values))]
    highs = [h[labels == k].max() for k in range(len(data.x2_values))]
    lo, hi = max(lows), min(highs)
    if not hi > lo:
        raise ValueError(f"the isotherms' field ranges do not overlap (common range [{lo:g}, {hi:g}])")
    return float(lo), float(hi)


def default_dh_tesla(data: TrainingData, h_unit: str) -> list[float]:
    """Field changes an isotherm measurement offers: every whole tesla up to the common span, and the span."""
    lo, hi = (float(entropy.to_tesla(v, h_unit)) for v in field_range(data))
    span = round(hi - lo, 9)
    whole = [float(v) for v in np.arange(1.0, np.floor(span + 1e-9) + 1.0)]
    return whole + ([span] if not whole or span - whole[-1] > 1e-6 else [])


def isotherm_entropy(
    data: TrainingData,
    units: entropy.MagnetUnits,
    model=None,
    *,
    dh_tesla: float | Sequence[float] | None = None,
    t_step: float | None = None,
    h_step_t: float | None = None,
    method: str = "maxwell",
    max_points: int = 5_000_000,
) -> entropy.SimulatedEntropy:
    """|ΔS_M| of isotherm data: from `model` (predicts Y(H, T)) on a fine grid, or from the data when model is None."""
    temps = data.x2_values
    if temps.size < 2:
        raise ValueError(f"ΔS_M needs isotherms at two temperatures at least; the data has {temps.size}")
    lo, hi = field_range(data)
    dh = default_dh_tesla(data, units.h_unit) if dh_tesla is None else dh_tesla
    if model is None:
        h_grid, m = on_one_field_grid(data)
        table = pd.DataFrame({"T": np.repeat(temps, h_grid.size), "H": np.tile(h_grid, temps.size), "M": m.ravel()})
        curves = entropy.delta_s(table, t_col="T", h_col="H", m_col="M", dh_tesla=dh, method=method,
                                 **units.kwargs())
        return entropy.SimulatedEntropy(curves, entropy.figures_of_merit(curves),
                                        np.unique(curves["T_K"].to_numpy()), h_grid)
    t_fake, h_fake = grid_span(data)
    return entropy.simulated_delta_s(_Swapped(model), t_fake, h_fake, units, dh_tesla=dh, t_step=t_step,
                                     h_step_t=h_step_t, method=method, max_points=max_points)


def on_one_field_grid(data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """(field grid over the common range, as many points as an isotherm has in the median; Y of each isotherm
    interpolated linearly onto it, shape (isotherms, fields))."""
    lo, hi = field_range(data)
    h_grid = np.linspace(lo, hi, max(2, int(np.median(np.bincount(data.set_points.labels)))))
    h = data.frame[data.x1_name].to_numpy(dtype=float)
    m = data.frame[data.y_name].to_numpy(dtype=float)
    out = np.empty((data.x2_values.size, h_grid.size))
    for k in range(data.x2_values.size):
        sel = data.set_points.labels == k
        order = np.argsort(h[sel], kind="stable")
        out[k] = np.interp(h_grid, h[sel][order], m[sel][order])
    return h_grid, out


@functools.lru_cache(maxsize=4)
def peak_temperature(data: TrainingData) -> float:
    """The middle of the gap between isotherms where the data's own |ΔS_M| over the whole common field range
    peaks (the trapezoid of ∂M/∂T between neighbouring isotherms; units cancel out of where it peaks).
    Cached by equal data: the folds' plan asks on every Monitor refresh, and it costs tens of ms."""
    h_grid, m = on_one_field_grid(data)
    temps = data.x2_values
    slope = np.diff(m, axis=0) / np.diff(temps)[:, None]
    j = int(np.argmax(np.abs(np.trapezoid(slope, h_grid, axis=1))))
    return float((temps[j] + temps[j + 1]) / 2)


def held_out_integral(model, data: TrainingData, units: entropy.MagnetUnits, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(H in tesla, ascending; I(H)): what a model fitted without the interior isotherm i gets wrong there,
    as |ΔS_M| in J/(kg·K). I(H) = ∫ e dH from the isotherm's lowest field, over the half double gap
    (T_{i+1} − T_{i−1})/2: a wrong M at T_i by e shifts ∂M/∂T on both sides of it by about e / ΔT, so the
    |ΔS_M| integrated up to H is off by about I(H) (``choice`` scores its largest value, ``uncertainty``
    makes the isotherm band of it)."""
    temps = data.x2_values
    x, y = data.arrays()
    sel = data.set_points.labels == i
    order = np.argsort(x[sel, 0], kind="stable")
    h, m = x[sel, 0][order], y[sel][order]
    misfit = entropy.to_specific_moment(np.asarray(model.predict(h, x[sel, 1][order]), float) - m, units.m_unit,
                                        mass_mg=units.mass_mg, molar_mass_g=units.molar_mass_g)
    h_t = np.asarray(entropy.to_tesla(h, units.h_unit), dtype=float)
    running = np.concatenate([[0.0], np.cumsum(np.diff(h_t) * (misfit[1:] + misfit[:-1]) / 2)])
    return h_t, running / ((temps[i + 1] - temps[i - 1]) / 2)


def grid_span(data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """(T, H) points that make :func:`entropy.fine_axes` span isotherm data as M(T) sweeps: the isotherms'
    temperatures at the two ends of the field range they all cover."""
    lo, hi = field_range(data)
    return np.tile(data.x2_values, 2), np.repeat([lo, hi], data.x2_values.size)
