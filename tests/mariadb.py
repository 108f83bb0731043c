"""A throw-away MariaDB server for the integration tests.

`MariaDBServer.start()` initialises a data directory in a temporary folder and
runs Debian's `/usr/sbin/mariadbd` on 127.0.0.1 and a free port, with no
systemd, no mysqld_safe and no config files (`--no-defaults`). Administration
(creating databases and users, `SET GLOBAL`) goes through the `mariadb`
command-line client on the server's own unix socket, where the OS user is the
MariaDB admin account (unix_socket authentication). The application only ever
sees a TCP URL for a user with rights on its own database.

Only the process this object started is ever signalled, by its PID.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["MariaDBServer", "MariaDBError", "free_port", "mariadbd_path"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_DEFAULT_MARIADBD = "/usr/sbin/mariadbd"


class MariaDBError(RuntimeError):
    """The server could not be set up, started or administered."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def mariadbd_path() -> str | None:
    """Path of the MariaDB server binary, or None when it is not installed."""
    if os.access(_DEFAULT_MARIADBD, os.X_OK):
        return _DEFAULT_MARIADBD
    return shutil.which("mariadbd") or shutil.which("mysqld")


def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise MariaDBError(f"none of {names} is on PATH (is mariadb-server/mariadb-client installed?)")


def _pdeathsig_prefix() -> list[str]:
    """`setpriv --pdeathsig TERM --` when possible: Linux then SIGTERMs the server if
    the test process dies without cleaning up (setpriv execs, so the PID is the
    server's). Only from the main thread: the signal fires when the *thread* that
    started the server exits, and a test may restart the server from a helper thread."""
    setpriv = shutil.which("setpriv")
    if setpriv and sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        return [setpriv, "--pdeathsig", "TERM", "--"]
    return []


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid database/user name {name!r}: use 1-64 of [A-Za-z0-9_]")
    return name


class MariaDBServer:
    """One mariadbd process on 127.0.0.1 with its own data directory.

    >>> srv = MariaDBServer(); srv.start()
    >>> srv.url        # mysql+pymysql://mat_interp:...@127.0.0.1:PORT/mat_interp
    >>> srv.new_database("t1")   # URL of another empty database, own user
    >>> srv.stop()
    """

    def __init__(
        self,
        base_dir: str | Path | None = None,
        *,
        database: str = "mat_interp",
        user: str = "mat_interp",
        password: str | None = None,
        port: int | None = None,
        startup_timeout: float = 60.0,
        shutdown_timeout: float = 30.0,
    ) -> None:
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.database = _check_name(database)
        self.user = _check_name(user)
        self.password = password or secrets.token_hex(12)
        self.port = port
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.proc: subprocess.Popen | None = None
        self._initialised = False
        self._is_root = os.geteuid() == 0
        # With --auth-root-authentication-method=socket the admin account is the
        # OS user that runs the server: root when we are root, else ourselves.
        self.admin_user = "root" if self._is_root else pwd.getpwuid(os.geteuid()).pw_name
        self._atexit_registered = False

    # ----------------------------------------------------------------- paths
    @property
    def datadir(self) -> Path:
        return self._base / "data"

    @property
    def socket_path(self) -> Path:
        return self._base / "mysqld.sock"

    @property
    def error_log(self) -> Path:
        return self._base / "mysqld.err"

    @property
    def _base(self) -> Path:
        if self.base_dir is None:
            raise MariaDBError("server has no base directory yet; call start()")
        return self.base_dir

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # ------------------------------------------------------------------ urls
    def url_for(self, database: str, user: str | None = None, password: str | None = None) -> str:
        if self.port is None:
            raise MariaDBError("server not started")
        return (
            f"mysql+pymysql://{user or self.user}:{password or self.password}"
            f"@127.0.0.1:{self.port}/{database}"
        )

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `mat_interp` database for the app user."""
        return self.url_for(self.database)

    # ------------------------------------------------------------- lifecycle
    def start(self) -> "MariaDBServer":
        """Initialise the data directory (first time only) and start the server."""
        if self.running:
            return self
        server = mariadbd_path()
        if server is None:
            raise MariaDBError("mariadbd is not installed (apt-get install mariadb-server)")
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="mi-mariadb-"))
        self._base.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket_path)) > 100:
            raise MariaDBError(f"socket path too long for a unix socket: {self.socket_path}")
        first_start = not self._initialised
        if first_start:
            self._install_db()
        attempts = 3 if self.port is None else 1
        for attempt in range(attempts):
            if self.port is None or (attempt > 0 and first_start):
                self.port = free_port()
            try:
                self._launch(server)
                break
            except MariaDBError as exc:
                if attempt + 1 < attempts and "already in use" in str(exc):
                    continue  # lost a race for the port: pick another one
                raise
        if not self._atexit_registered:
            atexit.register(self._atexit_stop)
            self._atexit_registered = True
        if first_start:
            self._create_app_database()
        return self

    def stop(self) -> None:
        """SIGTERM the server we started (by PID), wait, SIGKILL on timeout."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.shutdown_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.proc = None
        self._close_log()

    def restart(self) -> "MariaDBServer":
        """Stop and start again on the same data directory and port."""
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop the server and delete the base directory if we created it."""
        self.stop()
        if self._own_base and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
            self._initialised = False

    def __enter__(self) -> "MariaDBServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _atexit_stop(self) -> None:
        try:
            self.stop()
        except Exception:
            pass

    # ------------------------------------------------------------ admin SQL
    def execute(self, sql: str, *, database: str | None = None, timeout: float = 60.0) -> str:
        """Run SQL as the admin account over the unix socket; return tab-separated output."""
        if not self.running:
            raise MariaDBError("server is not running")
        cmd = [
            _tool("mariadb", "mysql"),
            "--no-defaults",
            f"--socket={self.socket_path}",
            f"-u{self.admin_user}",
            "--batch",
            "--skip-column-names",
        ]
        if database:
            cmd.append(f"--database={_check_name(database)}")
        res = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise MariaDBError(f"SQL failed ({res.returncode}): {res.stderr.strip()}\n--- SQL:\n{sql}")
        return res.stdout

    def create_database(self, name: str) -> None:
        """An empty utf8mb4 database with no grants for anyone but the admin."""
        self.execute(
            f"CREATE DATABASE `{_check_name(name)}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        )

    def create_user(self, user: str, password: str, databases: list[str]) -> None:
        """A user reachable over TCP (127.0.0.1) with ALL on the given databases only."""
        _check_name(user)
        if "'" in password or "\\" in password:
            raise ValueError("password must not contain quotes or backslashes")
        stmts = []
        for host in ("127.0.0.1", "localhost"):
            stmts.append(f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{password}';")
            for db in databases:
                stmts.append(f"GRANT ALL PRIVILEGES ON `{_check_name(db)}`.* TO '{user}'@'{host}';")
        stmts.append("FLUSH PRIVILEGES;")
        self.execute("\n".join(stmts))

    def new_database(self, name: str | None = None) -> str:
        """URL of a fresh, empty database with its own user that can reach nothing else."""
        name = _check_name(name or f"t_{secrets.token_hex(6)}")
        user = name[:64]
        password = secrets.token_hex(12)
        self.create_database(name)
        self.create_user(user, password, [name])
        return self.url_for(name, user, password)

    def set_global(self, variable: str, value: int | str) -> None:
        """`SET GLOBAL variable = value` (e.g. max_allowed_packet); new connections see it."""
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", variable):
            raise ValueError(f"invalid variable name {variable!r}")
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError("value must be an int or a str")
        literal = str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"
        self.execute(f"SET GLOBAL {variable} = {literal};")

    def get_global(self, variable: str) -> str:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", variable):
            raise ValueError(f"invalid variable name {variable!r}")
        return self.execute(f"SELECT @@GLOBAL.{variable};").strip()

    # ------------------------------------------------------------- internals
    def _install_db(self) -> None:
        if self.datadir.exists() and any(self.datadir.iterdir()):
            self._initialised = True  # a datadir from an earlier start(): reuse it
            return
        cmd = [
            _tool("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=socket",
            f"--auth-root-socket-user={self.admin_user}",
            "--skip-test-db",
        ]
        if self._is_root:
            cmd.insert(2, "--user=root")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            raise MariaDBError(
                f"mariadb-install-db failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
            )
        self._initialised = True

    def _launch(self, server: str) -> None:
        cmd = [
            *_pdeathsig_prefix(),
            server,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--pid-file={self._base / 'mysqld.pid'}",
            f"--log-error={self.error_log}",
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=64M",
            "--max-connections=200",
            "--innodb-flush-log-at-trx-commit=2",
        ]
        if self._is_root:
            cmd.insert(cmd.index("--no-defaults") + 1, "--user=root")  # mariadbd refuses root otherwise
        if self.error_log.exists():
            log_offset = self.error_log.stat().st_size
        else:
            log_offset = 0
        self._out = open(self._base / "mysqld.out", "ab")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready(log_offset)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, log_offset: int) -> None:
        """Poll `mariadb-admin ping` until it answers, the process dies, or the deadline passes."""
        assert self.proc is not None
        admin = _tool("mariadb-admin", "mysqladmin")
        ping = [admin, "--no-defaults", f"--socket={self.socket_path}", f"-u{self.admin_user}",
                "--connect-timeout=2", "ping"]
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise MariaDBError(
                    f"mariadbd exited with {self.proc.returncode} during start-up:\n{self._log_tail(log_offset)}"
                )
            if self.socket_path.exists():
                res = subprocess.run(ping, capture_output=True, text=True, timeout=30)
                if res.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise MariaDBError(
                    f"mariadbd did not answer ping within {self.startup_timeout:.0f} s:\n"
                    f"{self._log_tail(log_offset)}"
                )
            try:  # doubles as the poll interval and as an early exit if the server dies
                self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass

    def _create_app_database(self) -> None:
        self.create_database(self.database)
        self.create_user(self.user, self.password, [self.database])

    def _log_tail(self, offset: int = 0) -> str:
        try:
            with open(self.error_log, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return "(no error log)"
        if "Address already in use" in text or "Can't start server: Bind on TCP/IP port" in text:
            text += "\n[port already in use]"
        return text[-4000:]

    def _close_log(self) -> None:
        out = getattr(self, "_out", None)
        if out is not None:
            out.close()
            self._out = None
