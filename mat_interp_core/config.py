"""Settings from environment variables, with an embedded default that needs no server.

| variable | default | meaning |
| --- | --- | --- |
| MAT_INTERP_HOME | ~/.mat_interp | folder of the embedded SQLite database |
| MAT_INTERP_DATABASE_URL | sqlite:///$MAT_INTERP_HOME/mat_interp.db | the one database of studies, data and models |
| MAT_INTERP_MAX_UPLOAD_MB | 200 | largest CSV accepted |
| MAT_INTERP_MAX_GRID_POINTS | 5000000 | largest simulated grid |
| MAT_INTERP_LOCAL_WORKERS | 1 | 0: the app starts no workers (a worker service does) |
| MAT_INTERP_WORKERS | cores - 1 (at least 1) | default number of local workers |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    max_upload_mb: float
    max_grid_points: int
    local_workers: bool
    default_workers: int


def _env_number(name: str, default: float, cast=float):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return cast(default)
    try:
        value = cast(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"environment variable {name}={raw!r} must be positive")
    return value


def get_settings() -> Settings:
    """Read the settings now (not cached: tests and the CLI change the environment)."""
    home = Path(os.environ.get("MAT_INTERP_HOME") or Path.home() / ".mat_interp").expanduser()
    url = os.environ.get("MAT_INTERP_DATABASE_URL") or f"sqlite:///{home / 'mat_interp.db'}"
    local = os.environ.get("MAT_INTERP_LOCAL_WORKERS", "1").strip().lower() not in ("0", "false", "no", "off")
    return Settings(
        home=home,
        database_url=url,
        max_upload_mb=_env_number("MAT_INTERP_MAX_UPLOAD_MB", 200.0),
        max_grid_points=_env_number("MAT_INTERP_MAX_GRID_POINTS", 5_000_000, int),
        local_workers=local,
        default_workers=_env_number("MAT_INTERP_WORKERS", max(1, (os.cpu_count() or 2) - 1), int),
    )


def mask_url(url: str) -> str:
    """The database URL with its password replaced by ***, for display."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))
