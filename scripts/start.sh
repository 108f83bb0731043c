#!/usr/bin/env bash
# Set up (when needed) and start the mat-interp app on the embedded SQLite default.
#   scripts/start.sh                      -> http://127.0.0.1:8501
#   scripts/start.sh --server.port 8600   (extra arguments go to `streamlit run`)
# Settings come from the environment: MAT_INTERP_DATABASE_URL (default: SQLite in
# MAT_INTERP_HOME, ~/.mat_interp), MAT_INTERP_LOCAL_WORKERS, MAT_INTERP_MAX_UPLOAD_MB.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python}"

if ! "$PYTHON" -c "import mat_interp_core, tensorflow, optuna, streamlit, sqlalchemy, plotly" >/dev/null 2>&1; then
    echo "[start.sh] installing mat-interp (pip install -e .)" >&2
    "$PYTHON" -m pip install --disable-pip-version-check -e .
fi

export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
exec "$PYTHON" -m streamlit run app/streamlit_app.py \
    --server.address 127.0.0.1 \
    --server.headless true \
    --browser.gatherUsageStats false \
    "$@"
