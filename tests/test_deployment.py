"""The lab-server deployment (docker-compose.yml, docker/Dockerfile) and the two
README commands, checked without a Docker engine: by parsing the files, and by
running the commands the services would run against a real MariaDB server."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
ENV_EXAMPLE = ROOT / ".env.example"
PYPROJECT = ROOT / "pyproject.toml"
APP_SCRIPT = "app/streamlit_app.py"


# =========================================================== compose helpers
_VAR_RE = re.compile(
    r"\$(?:(?P<escape>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(KeyError):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Docker Compose variable interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d},
    ${VAR:?msg}, ${VAR?msg}, ${VAR:+alt}, ${VAR+alt}. Unset plain vars -> ''."""

    def repl(m: re.Match[str]) -> str:
        if m.group("escape"):
            return "$"
        name = m.group("braced") or m.group("plain")
        op, arg = m.group("op"), m.group("arg") or ""
        is_set = name in env
        non_empty = is_set and env[name] != ""
        present = non_empty if op and op.startswith(":") else is_set
        if op in ("-", ":-"):
            return env[name] if present else arg
        if op in ("?", ":?"):
            if not present:
                raise MissingVariable(f"{name}: {arg}")
            return env[name]
        if op in ("+", ":+"):
            return arg if present else ""
        return env.get(name, "")

    return _VAR_RE.sub(repl, value)


def variables_in(value: str) -> set[str]:
    return {m.group("braced") or m.group("plain") for m in _VAR_RE.finditer(value) if not m.group("escape")}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    return node


def parse_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"{path.name}:{n}: not KEY=value: {line!r}"
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), f"{path.name}:{n}: bad key {key!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key] = value
    return env


def _env_mapping(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def _command(service: dict) -> list[str]:
    cmd = service.get("command")
    assert cmd, "service has no command"
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


@pytest.fixture(scope="module")
def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(compose_raw: dict, env_example: dict[str, str]) -> dict:
    """The compose file as `docker compose config` would see it with .env = .env.example."""
    return _interpolate_tree(compose_raw, env_example)


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


# ============================================================ compose checks
def test_compose_has_the_three_services(compose_raw):
    assert set(compose_raw["services"]) == {"db", "app", "worker"}


def test_app_and_worker_build_one_local_image(compose_raw):
    """Both run the image built here; `docker compose pull` must not look for it in a registry."""
    for name in ("app", "worker"):
        service = compose_raw["services"][name]
        assert service["image"] == "mat-interp:latest" and service["pull_policy"] == "build", name
        assert service["build"]["dockerfile"] == "docker/Dockerfile" and service["build"]["context"] == ".", name


def test_db_service(compose_raw, compose):
    db = compose["services"]["db"]
    assert db["image"].startswith("mysql:8")
    test = db["healthcheck"]["test"]
    joined = " ".join(test) if isinstance(test, list) else test
    assert "mysqladmin" in joined and "ping" in joined
    env = _env_mapping(compose_raw["services"]["db"])
    assert {"MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"} <= set(env)
    # no published port by default
    assert not db.get("ports"), "db must not publish a port by default"
    assert db.get("network_mode") != "host"


def test_db_data_on_named_volume(compose):
    db = compose["services"]["db"]
    named = set(compose.get("volumes") or {})
    mounts = []
    for v in db.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v.get("source"), v.get("target")
        mounts.append((source, target))
    assert any(src in named and tgt == "/var/lib/mysql" for src, tgt in mounts), mounts
    assert "db-data" in named


@pytest.mark.parametrize("env_source", ["empty", ".env.example"])
def test_app_port_bound_to_loopback_by_default(compose_raw, env_example, env_source):
    env = {} if env_source == "empty" else env_example
    ports = compose_raw["services"]["app"]["ports"]
    assert len(ports) == 1
    spec = interpolate(ports[0], env)
    host_ip, host_port, container_port = spec.rsplit(":", 2)
    assert host_ip == "127.0.0.1"
    assert host_port == "8501" and container_port == "8501"


def test_services_wait_for_healthy_db(compose):
    for name in ("app", "worker"):
        dep = compose["services"][name]["depends_on"]
        assert isinstance(dep, dict), f"{name}: depends_on needs the long form with a condition"
        assert dep["db"]["condition"] == "service_healthy", name
        assert compose["services"][name]["restart"] == "unless-stopped", name


def test_app_service_environment(compose, env_example):
    app = compose["services"]["app"]
    env = _env_mapping(app)
    assert env["MAT_INTERP_LOCAL_WORKERS"] == "0"
    url = make_url(env["MAT_INTERP_DATABASE_URL"])
    assert url.drivername == "mysql+pymysql"
    assert (url.host, url.port) == ("db", 3306)
    assert url.username == env_example["MYSQL_USER"]
    assert url.password == env_example["MYSQL_PASSWORD"]
    assert url.database == env_example["MYSQL_DATABASE"]
    # the worker uses the very same database
    assert _env_mapping(compose["services"]["worker"])["MAT_INTERP_DATABASE_URL"] == str(
        env["MAT_INTERP_DATABASE_URL"]
    )


def test_worker_is_scalable(compose_raw):
    worker = compose_raw["services"]["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert worker.get("healthcheck", {}).get("disable") is True, "the image's check is the app's HTTP one"
    app, db = compose_raw["services"]["app"], compose_raw["services"]["db"]
    assert "container_name" not in app and "container_name" not in db


def test_service_commands_are_provided_by_the_package(compose, pyproject):
    scripts = pyproject["project"]["scripts"]
    deps = {re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0].lower() for d in pyproject["project"]["dependencies"]}
    app_cmd = _command(compose["services"]["app"])
    assert app_cmd[0] == "streamlit" and "streamlit" in deps
    assert app_cmd[1] == "run" and app_cmd[2] == APP_SCRIPT
    assert (ROOT / app_cmd[2]).is_file(), f"{app_cmd[2]} (the app service's target) does not exist yet"
    assert app_cmd[app_cmd.index("--server.address") + 1] == "0.0.0.0"
    assert app_cmd[app_cmd.index("--server.port") + 1] == "8501"

    worker_cmd = _command(compose["services"]["worker"])
    assert worker_cmd[0] in scripts, f"{worker_cmd[0]} is not in [project.scripts]"
    assert scripts[worker_cmd[0]] == "mat_interp_core.cli:main"
    assert worker_cmd[1] == "worker"
    assert "--exit-when-idle" not in worker_cmd, "a service worker must keep serving"


def test_no_secrets_in_compose(compose_raw, env_example):
    required_ref = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")

    def check_env(service: str, env: dict[str, str]) -> None:
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|TOKEN|KEY", key):
                assert required_ref.match(value), f"{service}.{key} must be a ${{VAR}} without default"

    for name, service in compose_raw["services"].items():
        check_env(name, _env_mapping(service))
    for value in _strings(compose_raw):
        for m in re.finditer(r"://([^:/@\s]+):([^@\s]*)@", value):
            assert required_ref.match(m.group(2)), f"literal password in URL {value!r}"
    raw_text = COMPOSE.read_text()
    for key, value in env_example.items():
        if "PASSWORD" in key:
            assert value not in raw_text, f"the example {key} appears literally in docker-compose.yml"


def test_every_compose_variable_is_in_env_example(compose_raw, env_example):
    used = set().union(*(variables_in(s) for s in _strings(compose_raw)))
    assert {"MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"} <= used
    assert used - set(env_example) == set()
    # and the required ones really are required: compose refuses to start without .env
    with pytest.raises(MissingVariable):
        _interpolate_tree(compose_raw, {})


def test_interpolation_helper():
    env = {"A": "x", "E": ""}
    assert interpolate("${A}-${B:-d}-${E:-d}-${E-d}-$$A-$A", env) == "x-d-d--$A-x"
    assert interpolate("${A:+y}${B:+y}", env) == "y"
    with pytest.raises(MissingVariable):
        interpolate("${E:?need E}", env)
    assert variables_in("$$NOT ${A:-1} $B") == {"A", "B"}


# ========================================================= Dockerfile checks
def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[dict]]:
    """(global ARG defaults, stages); a stage = {base, name, instructions: [(KEYWORD, args)]}."""
    logical: list[str] = []
    buf = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        logical.append((buf + stripped).strip())
        buf = ""
    if buf.strip():
        logical.append(buf.strip())

    args: dict[str, str] = {}
    stages: list[dict] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            m = re.match(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            assert m, f"cannot parse FROM {rest!r}"
            base = re.sub(r"\$\{?(\w+)\}?", lambda v: args.get(v.group(1), v.group(0)), m.group(1))
            stages.append({"base": base, "name": m.group(2), "instructions": []})
        elif not stages:
            if keyword == "ARG":
                name, _, default = rest.partition("=")
                args[name.strip()] = default.strip()
        else:
            stages[-1]["instructions"].append((keyword, rest))
    return args, stages


def _exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"use the exec (JSON) form: {args!r}"
    return json.loads(args)


@pytest.fixture(scope="module")
def stages() -> list[dict]:
    return parse_dockerfile(DOCKERFILE)[1]


def test_dockerfile_is_multi_stage_on_slim_python(stages):
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"(docker\.io/(library/)?)?python:3\.11[\w.-]*-slim[\w.-]*(@sha256:\w+)?", stage["base"]), stage["base"]
    final = stages[-1]
    copies_from = [a for k, a in final["instructions"] if k == "COPY" and "--from=" in a]
    assert any("/opt/venv" in a for a in copies_from), "final stage should copy the venv from the builder"


def test_final_stage_has_no_build_tools(stages):
    final = stages[-1]
    for keyword, args in final["instructions"]:
        if keyword == "RUN":
            assert not re.search(r"\b(build-essential|gcc|g\+\+|clang|make|python3-dev|libc6-dev)\b", args), args
    builder_runs = " ".join(a for s in stages[:-1] for k, a in s["instructions"] if k == "RUN")
    assert "requirements.txt" in builder_runs


def test_final_stage_runs_as_non_root(stages):
    users = [a for k, a in stages[-1]["instructions"] if k == "USER"]
    assert users, "final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001" or "10001" in " ".join(a for k, a in stages[-1]["instructions"] if k == "RUN")


def test_final_stage_environment_port_and_healthcheck(stages):
    final = stages[-1]
    env_text = " ".join(a for k, a in final["instructions"] if k == "ENV")
    assert "TF_CPP_MIN_LOG_LEVEL=3" in env_text and "PYTHONUNBUFFERED=1" in env_text
    assert "8501" in [a for k, a in final["instructions"] if k == "EXPOSE"][0].split()
    checks = [a for k, a in final["instructions"] if k == "HEALTHCHECK"]
    assert checks and checks[-1].upper() != "NONE"
    assert "/_stcore/health" in checks[-1] and "curl" not in checks[-1]
    cmd = _exec_form([a for k, a in final["instructions"] if k == "CMD"][-1])
    assert cmd[:3] == ["streamlit", "run", APP_SCRIPT]
    entry = [a for k, a in final["instructions"] if k == "ENTRYPOINT"]
    assert entry and _exec_form(entry[-1])


def test_dockerfile_copies_existing_sources(stages):
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert ".env" in ignored and ".git" in ignored
    for stage in stages:
        for keyword, args in stage["instructions"]:
            if keyword in ("COPY", "ADD") and "--from=" not in args:
                parts = [p for p in args.split() if not p.startswith("--")]
                for src in parts[:-1]:
                    if src == APP_SCRIPT.split("/")[0]:
                        continue  # app/ exists as a folder even before the app is written
                    assert (ROOT / src).exists(), f"COPY source {src} missing"
                    assert src not in ignored, f"COPY source {src} is excluded by .dockerignore"


def test_requirements_mirror_pyproject(pyproject):
    def norm(spec: str) -> tuple[str, str]:
        spec = spec.split("#", 1)[0].strip().replace(" ", "")
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?(.*)$", spec)
        assert m, spec
        return m.group(1).lower().replace("_", "-"), m.group(2)

    req = dict(
        norm(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    )
    assert req == dict(norm(d) for d in pyproject["project"]["dependencies"])


# ================================================================ entrypoint
@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A PATH folder whose `mat-interp` and `streamlit` just print their argv, one per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("mat-interp", "streamlit"):
        exe = bin_dir / name
        exe.write_text(f'#!/bin/sh\necho "{name}"\nfor a in "$@"; do echo "$a"; done\n')
        exe.chmod(0o755)
    return bin_dir


def _run_entrypoint(fake_bin: Path, *args: str, url: str | None) -> subprocess.CompletedProcess:
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin"}
    if url is not None:
        env["MAT_INTERP_DATABASE_URL"] = url
    return subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30)


def test_entrypoint_worker_gets_database_from_env(fake_bin):
    url = "mysql+pymysql://u:p@db:3306/d"
    for argv in (("worker",), ("mat-interp", "worker")):
        res = _run_entrypoint(fake_bin, *argv, url=url)
        assert res.returncode == 0, res.stderr
        assert res.stdout.splitlines() == ["mat-interp", "worker"]  # the worker reads the URL from its environment
    res = _run_entrypoint(fake_bin, "worker", "proj", "--database", "sqlite:///x.db", url=url)
    assert res.stdout.splitlines() == ["mat-interp", "worker", "proj", "--database", "sqlite:///x.db"]
    res = _run_entrypoint(fake_bin, "worker", url=None)
    assert res.returncode == 2 and "MAT_INTERP_DATABASE_URL" in res.stderr


def test_entrypoint_passes_other_commands_through(fake_bin):
    res = _run_entrypoint(fake_bin, "streamlit", "run", APP_SCRIPT, url="x")
    assert res.stdout.splitlines() == ["streamlit", "run", APP_SCRIPT]
    res = _run_entrypoint(fake_bin, "--help", url=None)
    assert res.stdout.splitlines() == ["mat-interp", "--help"]


# ============================================================= local scripts
def test_scripts_are_valid_bash():
    for script in ("scripts/test.sh", "scripts/start.sh", ".ci/run"):
        path = ROOT / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        res = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    res = subprocess.run(["sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "bash scripts/test.sh" in ci


def test_streamlit_config():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["maxUploadSize"] == 200
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["server"]["headless"] is True
    assert cfg["server"].get("runOnSave", False) is False
    assert cfg["browser"]["gatherUsageStats"] is False


# ================================================= the services' real commands
def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def _wait_health(proc: subprocess.Popen, port: int, log: Path, deadline_s: float = 90.0) -> None:
    """Poll /_stcore/health until it says ok; fail early if the process dies."""
    url = f"http://127.0.0.1:{port}/_stcore/health"
    deadline = time.monotonic() + deadline_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            status, body = _get(url)
            if status == 200 and body.strip() == b"ok":
                return
        except OSError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            pytest.fail(f"no 'ok' from {url} within {deadline_s:.0f} s:\n{log.read_text()[-4000:]}")
        try:
            proc.wait(timeout=0.2)  # poll interval; returns early if the server dies
        except subprocess.TimeoutExpired:
            pass


def _stop(proc: subprocess.Popen) -> None:
    """Terminate only the process we started (and its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _require_app() -> None:
    assert (ROOT / APP_SCRIPT).is_file(), f"{APP_SCRIPT} does not exist yet (written by the app engineer)"


def test_app_service_command_health(compose, mariadb_url, free_port, tmp_path):
    """The compose `app` command, on loopback and a free port, against a real MariaDB."""
    _require_app()
    app = compose["services"]["app"]
    cmd = _command(app)
    port = free_port()
    cmd[cmd.index("--server.address") + 1] = "127.0.0.1"
    cmd[cmd.index("--server.port") + 1] = str(port)
    assert cmd[0] == "streamlit"
    cmd = [sys.executable, "-m", "streamlit", *cmd[1:]]

    env = dict(os.environ)
    env.update({k: v for k, v in _env_mapping(app).items()})
    env["MAT_INTERP_DATABASE_URL"] = mariadb_url
    env["MAT_INTERP_LOCAL_WORKERS"] = "0"
    log = tmp_path / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_health(proc, port, log)
        status, _ = _get(f"http://127.0.0.1:{port}/", timeout=10)
        assert status == 200
        # The image's HEALTHCHECK command itself, aimed at this server, reports healthy.
        _, stages = parse_dockerfile(DOCKERFILE)
        check = [a for k, a in stages[-1]["instructions"] if k == "HEALTHCHECK"][-1]
        hc = _exec_form(check[check.index("CMD") + 3:].strip())
        assert hc[0] == "python"
        hc = [sys.executable, *[a.replace("8501", str(port)) for a in hc[1:]]]
        assert subprocess.run(hc, timeout=30).returncode == 0
    finally:
        _stop(proc)


def test_start_script_serves_health(free_port, tmp_path):
    """The README command: scripts/start.sh on the embedded SQLite default."""
    _require_app()
    port = free_port()
    env = dict(os.environ)
    env.pop("MAT_INTERP_DATABASE_URL", None)
    env["MAT_INTERP_HOME"] = str(tmp_path / "home")
    env["PYTHON"] = sys.executable
    log = tmp_path / "start.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "start.sh"), "--server.port", str(port)],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_health(proc, port, log)
    finally:
        _stop(proc)


# ============================================ the worker service's real command
def worker_service(url: str, tmp_path: Path, *, log_name: str = "worker.log", **env_extra: str):
    """Start the compose `worker` service's command the way the container runs it.

    docker/entrypoint.sh gets the service's `command` and MAT_INTERP_DATABASE_URL,
    which the worker reads itself; `mat-interp` on PATH is a shim that execs
    `python -m mat_interp_core` (an installed console script could point at
    another checkout). Every step execs, so the returned process's PID is the
    worker's, as in a container. Output goes to the returned log file.
    """
    services = _interpolate_tree(yaml.safe_load(COMPOSE.read_text()), parse_env_file(ENV_EXAMPLE))["services"]
    service = services["worker"]
    cmd = _command(service)
    assert cmd[:2] == ["mat-interp", "worker"] and "--database" not in cmd
    bin_dir = tmp_path / "service-bin"
    shim = bin_dir / "mat-interp"
    if not shim.exists():  # never rewritten: a worker started just before may be exec'ing it
        bin_dir.mkdir(exist_ok=True)
        tmp = bin_dir / ".mat-interp.tmp"
        tmp.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m mat_interp_core "$@"\n')
        tmp.chmod(0o755)
        tmp.replace(shim)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", MAT_INTERP_HEARTBEAT="1")
    env.update({k: v for k, v in _env_mapping(service).items() if k != "MAT_INTERP_DATABASE_URL"})
    env.update(MAT_INTERP_DATABASE_URL=url, PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", **env_extra)
    log = tmp_path / log_name
    with open(log, "wb") as out:
        proc = subprocess.Popen(["sh", str(ENTRYPOINT), *cmd], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def _sigterm_and_wait(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM the process we started and return its exit code; fail if it takes longer than ``timeout``."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail(f"the worker did not exit within {timeout:.0f} s of SIGTERM")


def test_worker_service_command_serves_a_queued_project(mariadb_url, tmp_path):
    """`mat-interp worker` via the entrypoint, serving any project, against a real MariaDB:
    it runs a project queued before it started, keeps serving when idle, and exits 0 on SIGTERM."""
    from helpers import tiny_space, demo_data, wait_until
    from mat_interp_core import projects

    projects.create_project(mariadb_url, "queued", demo_data(), space=tiny_space(), n_trials=2)
    proc, log = worker_service(mariadb_url, tmp_path)
    try:
        wait_until(lambda: projects.progress(projects.open_project(mariadb_url, "queued"))["done"] or proc.poll() is not None,
                   timeout=120, what="the queued project's trials")
        assert proc.poll() is None, f"the service worker exited:\n{log.read_text()}"
        table = projects.trials_frame(projects.open_project(mariadb_url, "queued"))
        assert set(table.state) <= {"COMPLETE", "PRUNED"} and len(table) >= 2
        assert {t.split(":")[1] for t in _worker_attrs(mariadb_url, "queued")} == {str(proc.pid)}
        code = _sigterm_and_wait(proc, timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    out = log.read_text()
    assert code == 0, out
    password = make_url(mariadb_url).password
    assert f"worker {proc.pid} on mysql+pymysql://" in out and ":***@" in out and password not in out
    assert "serving any project" in out and "Traceback" not in out


def _worker_attrs(url: str, name: str) -> list[str]:
    from mat_interp_core import projects

    return [t.user_attrs.get("worker", "?:?") for t in projects.open_project(url, name).study().get_trials(deepcopy=False)]
