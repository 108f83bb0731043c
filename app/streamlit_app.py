"""mat-interp in the browser: `streamlit run app/streamlit_app.py`.

One file per page in app/views; shared helpers next to this file: session.py (session keys, settings,
error banners), fmt.py (escaping and number formats), figures.py (plotly figures, downloads),
local_workers.py (worker processes this server started) and common.py (sidebar, project picker, cached
library results, units). The pages only turn `mat_interp_core` calls into widgets and figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

_APP_DIR = Path(__file__).resolve().parent
for _path in (_APP_DIR, _APP_DIR.parent):  # the helpers (`import common`); mat_interp_core from a checkout
    if str(_path) not in sys.path:
        sys.path.insert(0 if _path == _APP_DIR else len(sys.path), str(_path))

import streamlit as st  # noqa: E402

import common  # noqa: E402

st.set_page_config(page_title="mat-interp", page_icon=":material/blur_on:", layout="wide")

pages = {
    "Data and training": [
        st.Page("views/data.py", title="Data", icon=":material/upload_file:", default=True),
        st.Page("views/train.py", title="Train", icon=":material/model_training:"),
        st.Page("views/monitor.py", title="Monitor", icon=":material/monitoring:"),
    ],
    "Using the model": [
        st.Page("views/results.py", title="Results", icon=":material/insights:"),
        st.Page("views/simulate.py", title="Simulate", icon=":material/grid_on:"),
        st.Page("views/entropy.py", title="Entropy", icon=":material/thermostat:"),
    ],
    "Manage": [
        st.Page("views/projects.py", title="Projects", icon=":material/folder_open:"),
    ],
}
page = st.navigation(pages)
page.run()
common.sidebar()  # after the page: it shows what the page just changed (current project, data)
