"""The hyper-parameter search space: the paper's defaults, adjustable per project."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mat_interp_core.network import DEFAULT_X2_TRANSFORM, SOLVERS, X2_TRANSFORMS

OBJECTIVES = ("train_r2", "holdout")


class SpaceError(ValueError):
    """A search-space setting that cannot work; the message names the setting."""


def batch_choices(n_points: int) -> tuple[int, int, int]:
    """Batch sizes of the method: {16,32,64} below 256 points, x4 per size class above."""
    if n_points < 256:
        return (16, 32, 64)
    if n_points < 1024:
        return (64, 128, 256)
    if n_points < 4096:
        return (128, 256, 512)
    return (256, 512, 1024)


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of the search and the training schedule (defaults: Terashima et al. 2023)."""

    layers: tuple[int, int] = (2, 10)
    nodes: tuple[int, int] = (50, 200)
    lr: tuple[float, float] = (5e-4, 5e-3)
    solvers: tuple[str, ...] = SOLVERS
    epochs: int = 500
    patience: int = 20
    min_resource: int = 50
    reduction_factor: int = 2
    objective: str = "train_r2"
    seed: int | None = None
    keep_models: int = 10  # stored models; after the refinement, the ensemble (beyond the paper, which keeps 1)
    # Beyond the paper (mat_interp_core.refine): after the search, retrain the best configurations for
    # this many epochs without early stopping; None: as many as `epochs`; 0: off (the paper's method only).
    refine_epochs: int | None = None
    batch_sizes: tuple[int, ...] | None = field(default=None)  # None: from the number of points
    # How the networks see X2 (network.X2_TRANSFORMS; beyond the paper, whose networks see it linearly:
    # ("linear",)). Several: the search picks per trial, so the ensemble can mix them.
    x2_transforms: tuple[str, ...] = (DEFAULT_X2_TRANSFORM,)

    def __post_init__(self) -> None:
        _check_range("layers", self.layers, 1, 50, int)
        _check_range("nodes", self.nodes, 1, 4096, int)
        _check_range("lr", self.lr, 1e-7, 1.0, float)
        if not self.solvers or any(s not in SOLVERS for s in self.solvers):
            raise SpaceError(f"solver must be among {', '.join(SOLVERS)}; got {', '.join(self.solvers) or 'none'}")
        for name, low in (("epochs", 1), ("patience", 1), ("min_resource", 1), ("reduction_factor", 2), ("keep_models", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise SpaceError(f"{name} must be a whole number >= {low}; got {value!r}")
        if self.refine_epochs is not None and (
            not isinstance(self.refine_epochs, int) or isinstance(self.refine_epochs, bool) or self.refine_epochs < 0
        ):
            raise SpaceError(f"refine_epochs must be a whole number >= 0 (0: no refinement); got {self.refine_epochs!r}")
        if not self.x2_transforms or any(t not in X2_TRANSFORMS for t in self.x2_transforms):
            raise SpaceError(f"x2 transform must be among {', '.join(X2_TRANSFORMS)}; "
                             f"got {', '.join(map(str, self.x2_transforms)) or 'none'}")
        if self.objective not in OBJECTIVES:
            raise SpaceError(f"objective must be one of {', '.join(OBJECTIVES)}; got {self.objective!r}")
        if self.batch_sizes is not None and (not self.batch_sizes or any(int(b) < 1 for b in self.batch_sizes)):
            raise SpaceError(f"batch sizes must be positive whole numbers; got {self.batch_sizes!r}")

    @property
    def refinement_epochs(self) -> int:
        """Epochs of the refinement after the search (0: none); by default the search's budget (twice it bought
        no accuracy on bench/refine_budget.py's family cases, README)."""
        return self.epochs if self.refine_epochs is None else self.refine_epochs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchSpace":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("layers", "nodes", "lr", "solvers", "batch_sizes", "x2_transforms"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        return cls(**known)

    def suggest(self, trial, n_points: int) -> dict[str, Any]:
        """Sample one configuration from ``trial`` (an Optuna trial)."""
        batches = tuple(self.batch_sizes or batch_choices(n_points))
        params = {
            "layers": trial.suggest_int("layers", *self.layers),
            "nodes": trial.suggest_int("nodes", *self.nodes),
            "lr": trial.suggest_float("lr", *self.lr, log=True),
            "batch": trial.suggest_categorical("batch", batches),
        }
        params["solver"] = (
            trial.suggest_categorical("solver", self.solvers) if len(self.solvers) > 1 else self.solvers[0]
        )
        params["x2_transform"] = (
            trial.suggest_categorical("x2_transform", self.x2_transforms) if len(self.x2_transforms) > 1
            else self.x2_transforms[0]
        )
        return params

    def params_of(self, trial) -> dict[str, Any]:
        """The configuration a finished trial sampled (what :meth:`suggest` returned), to train it again: a
        fixed solver or X2 transform comes from the trial's attributes, else this space's (trials from before
        transforms: linear), and so does ``transform_column`` when the transform went on X1 (the field of
        isotherms; absent: X2, so M(T) projects' plans and stored folds stay as they were)."""
        params = dict(trial.params)
        params.setdefault("solver", trial.user_attrs.get("solver", self.solvers[0]))
        params.setdefault("x2_transform", trial.user_attrs.get("x2_transform", "linear"))
        if int(trial.user_attrs.get("transform_column", 1)) != 1:
            params.setdefault("transform_column", int(trial.user_attrs["transform_column"]))
        return params


def _check_range(name: str, value, low, high, cast) -> None:
    try:
        a, b = (cast(v) for v in value)
    except (TypeError, ValueError):
        raise SpaceError(f"{name} must be a range MIN:MAX; got {value!r}") from None
    if cast is int and any(float(v) != int(float(v)) for v in value):
        raise SpaceError(f"{name} range must hold whole numbers; got {value!r}")
    if not (low <= a <= b <= high):
        raise SpaceError(f"{name} range {a}:{b} must satisfy {low} <= MIN <= MAX <= {high}")


def parse_range(text: str, name: str, cast=float) -> tuple:
    """'2:10' -> (2, 10); a single value '4' -> (4, 4)."""
    parts = [p.strip() for p in str(text).split(":")]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise SpaceError(f"--{name} must look like MIN:MAX, e.g. 2:10; got {text!r}")
    try:
        values = tuple(cast(float(p)) if cast is int else cast(p) for p in parts)
    except ValueError:
        raise SpaceError(f"--{name} must look like MIN:MAX with numbers; got {text!r}") from None
    if cast is int and any(float(p) != int(float(p)) for p in parts):
        raise SpaceError(f"--{name} must hold whole numbers; got {text!r}")
    return values
