"""Small shared pieces of the tests: a tiny search space, demo data, CLI runs, polling."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from mat_interp_core import dataset, synthetic
from mat_interp_core.space import SearchSpace

REPO_ROOT = Path(__file__).resolve().parents[1]

# Small networks and few epochs: a trial takes about a second.
TINY = dict(layers=(2, 2), nodes=(16, 24), lr=(2e-3, 5e-3), solvers=("adam",), epochs=30, patience=30,
            min_resource=10, keep_models=5)
TINY_ARGS = ["--layers", "2:2", "--nodes", "16:24", "--lr", "2e-3:5e-3", "--solver", "adam",
             "--epochs", "30", "--min-resource", "10"]


def transform_layer(model):
    """The field-transform layer (X2Transform) inside a stored model, or None (target scaling and seed
    averaging wrap the network)."""
    for layer in model.layers:
        if type(layer).__name__ == "X2Transform":
            return layer
        if hasattr(layer, "layers"):
            found = transform_layer(layer)
            if found is not None:
                return found
    return None


def tiny_space(**overrides) -> SearchSpace:
    return SearchSpace(**{**TINY, **overrides})


def demo_data() -> dataset.TrainingData:
    frame = synthetic.demo_frame()
    return dataset.validate(frame, "T (K)", "H (Oe)", "moment (emu)")


def env(**extra: str) -> dict[str, str]:
    """The test process's environment for a child, quick heartbeat, plus ``extra``."""
    out = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", MAT_INTERP_HEARTBEAT="1")
    out.update(extra)
    return out


def cli(*args: str, timeout: float = 300, cwd: Path | None = None, **env_extra: str) -> subprocess.CompletedProcess:
    """Run ``python -m mat_interp_core ARGS`` to completion and return its result."""
    return subprocess.run(
        [sys.executable, "-m", "mat_interp_core", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO_ROOT, env=env(**env_extra),
        stdin=subprocess.DEVNULL,
    )


def worker(url: str, *names: str, cwd: Path | None = None, **env_extra: str) -> subprocess.Popen:
    """Start ``mat-interp worker [NAME] --database URL --exit-when-idle`` as its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "mat_interp_core", "worker", *names, "--database", url, "--exit-when-idle", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd or REPO_ROOT, env=env(**env_extra),
        stdin=subprocess.DEVNULL,
    )


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
