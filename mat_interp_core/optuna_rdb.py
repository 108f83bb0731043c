"""The one place that reaches into Optuna's private storage: its user-attribute table and a trial's row id.

Optuna's storage API refuses to update a finished trial (UpdateFinishedTrialError) and caches what it read, so
the refinement and the validation, which annotate finished trials, and the refinement's claims (a row inserted
under Optuna's unique (trial, key) constraint) go straight to the table ``optuna.storages._rdb.models`` describes.
Everything here is tied to Optuna's schema: when Optuna changes it, this module is what to adapt.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from mat_interp_core import storage

__all__ = ["user_attr_table", "trial_id", "read_user_attrs", "set_finished_user_attrs", "user_attr_json",
           "insert_user_attr", "delete_user_attr"]


def user_attr_table() -> sa.Table:
    """Optuna's trial user-attribute table (its ORM model gives the schema: trial_id, key, value_json)."""
    from optuna.storages._rdb import models as optuna_models

    return optuna_models.TrialUserAttributeModel.__table__


def trial_id(trial) -> int:
    """The storage's row id of a trial (a FrozenTrial's private ``_trial_id``; not its number)."""
    return trial._trial_id


def read_user_attrs(url: str, trial_id: int) -> dict:
    """The trial's user attributes, read now (a study's cached trials may be stale)."""
    table = user_attr_table()
    with storage.get_engine(url).connect() as conn:
        rows = conn.execute(sa.select(table.c.key, table.c.value_json).where(table.c.trial_id == trial_id)).all()
    return {k: json.loads(v) for k, v in rows}


def set_finished_user_attrs(url: str, trial_id: int, attrs: dict) -> None:
    """Write user attributes of a *finished* trial, replacing earlier values."""
    table = user_attr_table()
    rows = [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]

    def replace(conn) -> None:
        conn.execute(table.delete().where(table.c.trial_id == trial_id, table.c.key.in_(list(attrs))))
        conn.execute(table.insert(), rows)

    storage.in_transaction(url, replace)


# Primitives on one attribute within the caller's transaction (``conn``): the refinement's claims.


def _where(trial_id: int, key: str):
    table = user_attr_table()
    return (table.c.trial_id == trial_id) & (table.c.key == key)


def user_attr_json(conn, trial_id: int, key: str) -> str | None:
    """The attribute's stored JSON text, None when the trial has no such attribute."""
    table = user_attr_table()
    return conn.execute(sa.select(table.c.value_json).where(_where(trial_id, key))).scalar()


def insert_user_attr(conn, trial_id: int, key: str, value_json: str) -> None:
    """Insert the attribute (JSON text); raises sqlalchemy's IntegrityError when the trial has it already."""
    conn.execute(user_attr_table().insert().values(trial_id=trial_id, key=key, value_json=value_json))


def delete_user_attr(conn, trial_id: int, key: str, value_json: str) -> None:
    """Delete the attribute if it still holds `value_json` (compare and delete: another process may have changed it)."""
    table = user_attr_table()
    conn.execute(table.delete().where(_where(trial_id, key), table.c.value_json == value_json))
