#!/usr/bin/env bash
# Run the whole test suite: `scripts/test.sh [pytest args...]`.
# Idempotent: installs what the tests need only when it is missing
#   - the project and its test extras (pip install -e ".[test]")
#   - Debian's mariadb-server and chromium (apt-get, sudo only when not root)
#   - as root, what the image job needs (scripts/image-test.sh --install: podman and friends)
# then runs pytest from the repository root: the whole suite in two processes (pytest-xdist; MAT_INTERP_TEST_JOBS=1
# for one), or, given extra arguments, exactly those (in one process unless they say -n).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python}"

log() { printf '[test.sh] %s\n' "$*" >&2; }

if ! "$PYTHON" -c "import mat_interp_core, tensorflow, optuna, streamlit, playwright, yaml, nbclient, ipykernel, xdist" >/dev/null 2>&1; then
    log "installing the project with its test extras (pip install -e .[test])"
    "$PYTHON" -m pip install --disable-pip-version-check -e ".[test]"
fi

# The installed package must be this checkout (CI clones afresh next to an older install).
here="$(pwd -P)"
installed="$(cd / && "$PYTHON" -c 'import mat_interp_core, os; print(os.path.dirname(os.path.dirname(os.path.realpath(mat_interp_core.__file__))))' 2>/dev/null || true)"
if [ "$installed" != "$here" ]; then
    log "pointing the installed mat-interp at this checkout (pip install --no-deps -e .)"
    "$PYTHON" -m pip install --disable-pip-version-check -q --no-deps -e .
fi

missing=()
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)   # never prompt: CI has no stdin
    else
        log "need root or sudo to install: ${missing[*]}"
        exit 1
    fi
    log "installing Debian packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The image job (tests/test_image.py): Debian's podman, buildah, podman-compose, debootstrap ... (root only;
# elsewhere that test skips and says why).
if [ "$(id -u)" -eq 0 ]; then
    bash scripts/image-test.sh --install
fi

export TF_CPP_MIN_LOG_LEVEL=3
if [ "$#" -eq 0 ]; then
    # The whole suite in two pytest processes (pytest-xdist) by default, each file in one of them so its
    # module-scoped servers and models are made once (tests/conftest.py puts the longest files first).
    jobs="${MAT_INTERP_TEST_JOBS:-2}"
    if [ "$jobs" -gt 1 ]; then
        set -- -n "$jobs" --dist loadfile --no-loadscope-reorder
    fi
fi
exec "$PYTHON" -m pytest "$@"
