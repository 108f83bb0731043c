"""The test infrastructure itself: the MariaDB fixture is a real, isolated server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True)


def test_server_answers_select_1(mariadb):
    engine = _engine(mariadb.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT DATABASE()")).scalar_one() == "mat_interp"
            version = conn.execute(sa.text("SELECT VERSION()")).scalar_one()
    finally:
        engine.dispose()
    assert "MariaDB" in version
    url = make_url(mariadb.url)
    assert url.host == "127.0.0.1" and url.port == mariadb.port


def test_server_listens_on_loopback_only(mariadb):
    assert mariadb.get_global("bind_address") == "127.0.0.1"
    assert mariadb.get_global("skip_name_resolve") in ("1", "ON")


def test_fresh_databases_are_empty_and_isolated(mariadb, mariadb_url):
    other_url = mariadb.new_database()
    assert make_url(other_url).database != make_url(mariadb_url).database

    a, b = _engine(mariadb_url), _engine(other_url)
    try:
        assert sa.inspect(a).get_table_names() == []
        with a.begin() as conn:
            conn.execute(sa.text("CREATE TABLE things (id INT PRIMARY KEY, name VARCHAR(20))"))
            conn.execute(sa.text("INSERT INTO things VALUES (1, 'only in a')"))
        # b neither has the table ...
        assert sa.inspect(b).get_table_names() == []
        # ... nor can its user reach a's database by name.
        db_a = make_url(mariadb_url).database
        with b.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError) as info:
                conn.execute(sa.text(f"SELECT * FROM `{db_a}`.things"))
            assert info.value.orig.args[0] in (1044, 1142)  # access denied (db / table)
    finally:
        a.dispose()
        b.dispose()


def test_each_test_gets_its_own_database(mariadb_url, request):
    db = make_url(mariadb_url).database
    engine = _engine(mariadb_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT DATABASE()")).scalar_one() == db
    finally:
        engine.dispose()


def test_restart_keeps_data(mariadb, mariadb_url):
    engine = _engine(mariadb_url)
    old_pid, old_port = mariadb.pid, mariadb.port
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE survivors (id INT PRIMARY KEY, v DOUBLE) ENGINE=InnoDB"))
            conn.execute(sa.text("INSERT INTO survivors VALUES (1, 0.5), (2, 1.5)"))

        mariadb.stop()
        assert not mariadb.running
        with pytest.raises(sa.exc.OperationalError):
            with _engine(mariadb_url).connect() as conn:  # server really is down
                conn.execute(sa.text("SELECT 1"))

        mariadb.start()
        assert mariadb.running and mariadb.port == old_port and mariadb.pid != old_pid
        # The pooled connections died with the server; pre-ping replaces them.
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, v FROM survivors ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, 0.5), (2, 1.5)]
        # restart() is stop + start on the same datadir and port
        mariadb.restart()
        assert mariadb.port == old_port
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM survivors")).scalar_one() == 2
    finally:
        engine.dispose()
        if not mariadb.running:  # leave the session server usable for later tests
            mariadb.start()


def test_app_user_cannot_see_ungranted_database(mariadb):
    mariadb.create_database("secret_stuff")
    mariadb.execute("CREATE TABLE secret_stuff.t (id INT); INSERT INTO secret_stuff.t VALUES (42);")
    engine = _engine(mariadb.url)
    try:
        with engine.connect() as conn:
            visible = set(conn.execute(sa.text("SHOW DATABASES")).scalars())
            assert "mat_interp" in visible
            assert "secret_stuff" not in visible
            assert "mysql" not in visible
            with pytest.raises(sa.exc.DBAPIError) as info:
                conn.execute(sa.text("SELECT id FROM secret_stuff.t"))
            assert info.value.orig.args[0] in (1044, 1142)
            with pytest.raises(sa.exc.DBAPIError):
                conn.execute(sa.text("CREATE DATABASE sneaky"))
            grants = " ".join(conn.execute(sa.text("SHOW GRANTS")).scalars())
        assert "`mat_interp`.*" in grants and "ON *.*" not in grants.replace("USAGE ON *.*", "")
    finally:
        engine.dispose()
    with pytest.raises(sa.exc.OperationalError):  # wrong password is refused
        bad = make_url(mariadb.url).set(password="wrong")
        with _engine(bad.render_as_string(hide_password=False)).connect():
            pass


def test_set_global_is_seen_by_new_connections(mariadb, mariadb_url):
    before = int(mariadb.get_global("max_allowed_packet"))
    target = 4 * 1024 * 1024 if before != 4 * 1024 * 1024 else 8 * 1024 * 1024
    mariadb.set_global("max_allowed_packet", target)
    try:
        engine = _engine(mariadb_url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT @@GLOBAL.max_allowed_packet")).scalar_one() == target
        finally:
            engine.dispose()
    finally:
        mariadb.set_global("max_allowed_packet", before)
    assert int(mariadb.get_global("max_allowed_packet")) == before


def test_environment_is_isolated():
    home = Path(os.environ["MAT_INTERP_HOME"])
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert home.is_dir() and home != Path.home() / ".mat_interp"


def test_sqlite_url_in_tmp_path(sqlite_url, tmp_path):
    assert sqlite_url == f"sqlite:///{tmp_path}/mi.db"
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
    assert (tmp_path / "mi.db").exists()


def test_free_port_is_bindable(free_port):
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_section31_csv(section31_csv):
    header = section31_csv.read_text().splitlines()[0]
    assert header.count(",") == 2
