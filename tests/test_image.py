"""CI's image job: scripts/image-test.sh builds docker/Dockerfile with podman and starts it for real
(the app alone, then the compose file with a local MariaDB for mysql:8.4 and a study run by the
compose worker). Required in CI; elsewhere it runs as root and skips, saying why, otherwise."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "image-test.sh"
TIMEOUT_S = 1500  # the budget is 10 min with the build cache; a first build on a busy machine takes longer


def _podman(*args: str) -> str:
    state = os.environ.get("MAT_INTERP_IMAGE_STATE", "/var/tmp/mat-interp-image")  # as the script
    env = dict(os.environ, CONTAINERS_CONF=f"{state}/containers.conf")
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=60).stdout


@pytest.mark.image
def test_image_builds_and_starts(tmp_path):
    if os.geteuid() != 0:
        reason = "the image job needs root (Debian's podman with runc and cgroupfs, installed by scripts/image-test.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)

    log = tmp_path / "image-test.log"
    start = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", str(SCRIPT)], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.terminate()  # the script's own trap removes its containers
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            pytest.fail(f"scripts/image-test.sh took over {TIMEOUT_S} s:\n{log.read_text()[-6000:]}")
    text = log.read_text()
    print(f"scripts/image-test.sh: {time.monotonic() - start:.0f} s\n{text}")
    assert code == 0, text[-6000:]
    for step in ("mat-interp --help runs in the image", "the app container answers /_stcore/health",
                 "MariaDB (for mysql:8.4) answers", "the compose app answers /_stcore/health",
                 "the compose worker ran the app's study in its own container", "image job passed"):
        assert step in text, f"no '{step}' in the log:\n{text[-6000:]}"

    # Nothing of the run is left: no container, network or volume of its compose project.
    run_id = re.search(r"podman-compose up \(project (\w+)\)", text).group(1)
    for kind in ("ps", "network", "volume"):
        args = ["ps", "-aq"] if kind == "ps" else [kind, "ls", "-q"]
        left = _podman(*args, "--filter", f"label=io.podman.compose.project={run_id}")
        assert left.strip() == "", f"{kind} left behind by {run_id}: {left}"
    assert _podman("ps", "-aq", "--filter", f"name={run_id}").strip() == ""
