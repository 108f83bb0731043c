"""Local worker processes this server started, per project (shared by all sessions)."""

from __future__ import annotations

import subprocess

import streamlit as st

import session


@st.cache_resource
def _worker_registry() -> dict[str, list[subprocess.Popen]]:
    """Local worker processes started by this server, per project (shared by all sessions)."""
    return {}


def register_workers(name: str, procs: list[subprocess.Popen]) -> None:
    _worker_registry().setdefault(name, []).extend(procs)
    st.session_state.setdefault(session.STARTED, []).extend(procs)


def live_worker_count(name: str | None = None) -> int:
    """Running local workers (of one project or all); exited ones are reaped and forgotten."""
    registry = _worker_registry()
    total = 0
    for project, procs in list(registry.items()):
        alive = [p for p in procs if p.poll() is None]
        registry[project] = alive
        if name is None or project == name:
            total += len(alive)
    return total
