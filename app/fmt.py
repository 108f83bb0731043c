"""Text for the page: user text escaped for Markdown and plotly, durations and numbers formatted ("—" when
missing)."""

from __future__ import annotations

import html
import math
import re
from typing import Any


# What starts Markdown that Streamlit renders in one line: links and images ([ ]), HTML and autolinks (<),
# emphasis (* ~; '_' only between words, where it is text), code, math ($), colour directives (:red[...]),
# and at the start only, headings, quotes and lists -- escaped with a backslash.
_MARKDOWN = re.compile(r"[\\`*\[\]<$~]|^[#>+-]|(?<=^\d)[.)]|(?<=^\d\d)[.)]|(?<=^\d\d\d)[.)]")
# Bare URLs and e-mail addresses, which Streamlit's frontend links whatever the escapes: a zero-width space
# after '://' and 'www', and before '@', keeps them text.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)


def md(text: Any) -> str:
    """``text`` on one line with its Markdown escaped, for user text (column, project, unit names, error
    messages quoting them) inside st.markdown/caption/info/... and widget labels: a column named
    ``[x](http://…)`` shows as typed for every viewer of a shared database, never as a link or image."""
    escaped = _MARKDOWN.sub(lambda m: "\\" + m.group(0), " ".join(str(text).split()))
    return _AUTOLINK.sub("\u200b", escaped)


def code(text: Any) -> str:
    """``text`` as a Markdown code span (shown literally), fenced by more backticks than it holds."""
    text = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def fmt_value(value: float | None, digits: int = 6) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def plain(text: Any) -> str:
    """``text`` for a plotly title, legend or hover: plotly renders a subset of HTML there (links, <b>, <br>),
    so user text (column names) has it escaped and shows as typed."""
    return html.escape(str(text), quote=False)
