"""Settings from environment variables, with an embedded default that needs no server.

| variable | default | meaning |
| --- | --- | --- |
| MAT_INTERP_HOME | ~/.mat_interp | folder of the embedded SQLite database |
| MAT_INTERP_DATABASE_URL | sqlite:///$MAT_INTERP_HOME/mat_interp.db | the one database of studies, data and models |
| MAT_INTERP_MAX_UPLOAD_MB | 200 | largest CSV accepted |
| MAT_INTERP_MAX_GRID_POINTS | 5000000 | largest simulated grid |
| MAT_INTERP_LOCAL_WORKERS | 1 | 0: the app starts no workers (a worker service does) |
| MAT_INTERP_WORKERS | every core (at most one per GiB of memory beyond the first) | default number of local workers |
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """A setting (environment variable or database URL) that cannot be used as given."""


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
        raise ConfigError(f"environment variable {name}={raw!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"environment variable {name}={raw!r} must be positive")
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
        default_workers=_env_number("MAT_INTERP_WORKERS", default_workers(), int),
    )


def default_workers() -> int:
    """One local worker per core (issue 12: the search and the steps after it are arithmetic-bound, one thread
    each), but no more than the memory holds: a worker stays under 1 GiB of proportional memory (the restart
    budget of :func:`workers.memory_budget_mb`), and the first GiB is left to the app or the CLI."""
    cores = os.cpu_count() or 1
    try:
        gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):  # not every platform reports its memory
        return cores
    return max(1, min(cores, int(gib) - 1))


_SECRET_KEY = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)  # query keys whose values are hidden


def mask_url(url: str) -> str:
    """The database URL with its password (and any password-like query value) shown as ***, for display.

    SQLAlchemy's own parser finds the password whatever characters it holds; a
    string it cannot parse has everything between ``//`` and the last ``@`` hidden.
    """
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        if "@" in (parsed.host or ""):  # an unencoded '@' in the password: the parser split it there
            raise ValueError(url)
        hidden = {k: "***" for k in parsed.query if _SECRET_KEY.search(k)}
        if hidden:
            parsed = parsed.update_query_dict(hidden)
        return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    except Exception:
        text = re.sub(r"((?:pass|pwd|secret|token)[^=&;]*=)[^&;]*", r"\1***", str(url), flags=re.IGNORECASE)
        start, end = text.find("//"), text.rfind("@")
        return text[: start + 2] + "***" + text[end:] if 0 <= start < end else text


_URL_FORMS = "sqlite:///PATH or mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE"


def check_database_url(url: str, where: str | None = None) -> str:
    """Return ``url`` if SQLAlchemy can build an engine from it, else raise ConfigError naming the fault.

    Checked without connecting: the syntax, the port, that the dialect and its
    driver are installed, the driver's query options and (PyMySQL) the charset.
    ``where`` names the setting the URL came from (--database, MAT_INTERP_DATABASE_URL), for the message.
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    origin = f" ({where})" if where else ""
    shown = f"the database URL {mask_url(url)!r}{origin}"
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"the database URL{origin} is empty; use {_URL_FORMS}")
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        host_port = url.split("//", 1)[-1].rsplit("@", 1)[-1].split("/", 1)[0].split("?", 1)[0]
        port = host_port.rsplit("]", 1)[-1].partition(":")[2]
        if port and not port.isdigit():
            raise ConfigError(f"{shown} has a port that is not a number ({port!r})") from None
        raise ConfigError(f"{shown} is not a URL SQLAlchemy can read; use {_URL_FORMS}") from None
    if "@" in (parsed.host or ""):
        raise ConfigError(f"{shown} has an '@' in its user name or password; write it as %40")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConfigError(f"{shown} has port {parsed.port}, outside 1-65535")
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except (sa.exc.NoSuchModuleError, ImportError):
        raise ConfigError(f"{shown} names the driver {parsed.drivername!r}, which is unknown or not installed; "
                          f"use {_URL_FORMS}") from None
    if parsed.get_driver_name() == "pymysql" and "charset" in parsed.query:
        import pymysql.charset

        charset = parsed.query["charset"]
        if not isinstance(charset, str) or pymysql.charset.charset_by_name(charset) is None:
            raise ConfigError(f"{shown} asks for charset {charset!r}, which MySQL does not know; use utf8mb4")
    try:
        dialect().create_connect_args(parsed)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{shown} has an option the driver cannot use ({err})") from None
    return url


# ---------------------------------------------------------------- files readable by their owner only


def private_dir(path: str | os.PathLike) -> Path:
    """``path`` as a folder, every missing part created 0o700 (folders that exist are left as they are)."""
    path = Path(path).expanduser()
    missing = []
    for part in (path, *path.parents):
        if part.exists():
            break
        missing.append(part)
    for part in reversed(missing):
        try:
            part.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by another process
            continue
        part.chmod(0o700)  # whatever the umask
    return path


def open_private(path: str | os.PathLike, mode: str = "w", **kwargs):
    """``open(path, mode)`` where a file created by it is 0o600 (the database, logs, exports hold user data)."""
    flags = {"w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL}[mode[0]]
    return open(path, mode, opener=lambda p, _flags: os.open(p, flags, 0o600), **kwargs)
