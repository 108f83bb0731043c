"""Reading and checking the user's data: the one boundary where files and typed values enter.

Every check lives here and runs once (scikit-learn style): `read_table` turns a file
into a raw table, `validate` turns three chosen columns into `TrainingData`, and the
small parsers turn typed text (``--x2-values``, axis ranges, project names) into
values. Anything rejected raises `DataError`, whose message is a complete sentence
that says what was wrong, where (column, row, file line) and what was expected.

Row numbers in messages are 1-based data rows; "line" is the line of the file,
counting the header as line 1 (so normally line = row + 1).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from . import setpoints

__all__ = [
    "DataError",
    "TrainingData",
    "guess_columns",
    "make_grid",
    "parse_axis",
    "parse_values",
    "read_table",
    "validate",
    "validate_project_name",
]

_MB = 1024 * 1024
_DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", " ": "whitespace"}
_WHITESPACE = " "  # the delimiter _sniff returns for columns separated by runs of spaces and tabs
_SNIFF_CHARS = 64 * 1024
_SNIFF_LINES = 50
_HUGE = 1e30
_X2_RTOL = 1e-9
_AXIS_RTOL = 1e-9
_MAX_LISTED = 10
_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d*,\d+(?:[eE][-+]?\d+)?\s*")
_DECIMAL_POINT = re.compile(r"\s*[-+]?\d*\.\d+(?:[eE][-+]?\d+)?\s*")
_GROUPED = re.compile(r"\s*[-+]?[1-9]\d{0,2}(?:,\d{3})+\s*")  # '10,000': a thousands separator or a decimal comma
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:([,.' ])\d{3})(?:\1\d{3})*(?:[.,]\d+)?")  # '1,000', '1.000,5', "1'000"
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LINES_ATTR = "line_numbers"
COMMENTS_ATTR = "comment_lines"  # how many '#' lines above the column row read_table skipped
HEADER_ROWS_ATTR = "header_rows"  # (line, cells) of the rows without numbers under the column row (units, comments)
_MAX_HEADER_ROWS = 3  # Origin's Units and Comments rows, and one more (a parameter row); more is no header


class DataError(ValueError):
    """Input rejected.

    str(err) is a complete user-facing sentence naming the column / row / value and what was expected.
    """


# --------------------------------------------------------------------------- reading


def read_table(source: Any, *, max_mb: float = 200.0, name: str = "file") -> pd.DataFrame:
    """Read a user's CSV (path, bytes or binary file-like) into a raw DataFrame.

    Accepts UTF-8 with or without BOM (UTF-16 with one), any line endings, and ',', ';' or tab as the
    delimiter, or runs of whitespace when no other splits the header (with decimal commas detected for all
    but ','). Rejects, with a
    `DataError` that says where, everything that is not a rectangular table with one
    header line naming distinct columns. Cells are not converted beyond pandas'
    inference: numeric checking is `validate`'s job.
    """
    label = _source_label(source, name)
    data = _read_bytes(source, max_mb=max_mb, label=label)
    text, data = _decode(data, label)
    if text.lstrip()[:8].lower() == "[header]":  # a Quantum Design .dat: its own reader
        from .readers import read_quantum_design

        return read_quantum_design(text, label)[0]
    text, n_comments = _blank_leading_comments(text, label)
    if n_comments:
        data = text.encode("utf-8")  # the field counts read the bytes
    delimiter, header, header_line, decimal = _sniff(text, label)
    names = _check_header(header, header_line, label, decimal)
    text, header_rows = _blank_header_rows(text, delimiter, decimal, header_line)
    if header_rows:
        data = text.encode("utf-8")
    line_numbers = _check_field_counts(data, text, delimiter, len(names), header_line, label)
    trailing_empty = names[-1] == ""
    if delimiter == _WHITESPACE:  # the names were split by _sniff (quotes, two spaces): pandas reads the rows only
        lines = text.split("\n")
        lines[header_line - 1] = ""
        text = "\n".join(lines)
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=r"\s+" if delimiter == _WHITESPACE else delimiter,
            decimal=decimal,
            header=None if delimiter == _WHITESPACE else 0,
            names=names if not trailing_empty else [*names[:-1], "\0trailing"],
            index_col=False,
            skipinitialspace=True,
            engine="c",
        )
    except (pd.errors.ParserError, ValueError) as err:  # pragma: no cover - our own checks come first
        raise DataError(f"{label} could not be read as CSV: {err}.") from None
    if trailing_empty:
        # "a,b,c," on every line is a common export quirk, not a nameless column.
        if not df.iloc[:, -1].isna().all():
            raise DataError(
                f"{label}: column {len(names)} in line {header_line} has no name; "
                "give every column a name in the header."
            )
        df = df.iloc[:, :-1]
    if decimal == ",":
        _refuse_thousands_points(df, line_numbers, label)
    if len(df) == len(line_numbers) and not np.array_equal(line_numbers, np.arange(2, len(df) + 2)):
        # Blank lines shifted rows against file lines: keep the real lines for validate's messages.
        df.attrs[_LINES_ATTR] = line_numbers
    if n_comments:
        df.attrs[COMMENTS_ATTR] = n_comments
    if header_rows:
        df.attrs[HEADER_ROWS_ATTR] = header_rows
    return df


def _blank_header_rows(text: str, delimiter: str, decimal: str, header_line: int) -> tuple[str, list]:
    """`text` with the rows between the column row and the first row with a number blanked (line numbers stay the
    file's), and those rows as (line, cells): Origin writes a Units and a Comments row under the names, which read
    as data made every column text. Only rows in which no cell is a number, at most _MAX_HEADER_ROWS of them,
    some cell of them filled, and followed by a row with a number; otherwise nothing is blanked (a text row lower
    down is `validate`'s to name). readers.load reads the units from them and names them in its notes."""
    lines = text.split("\n", header_line + _SNIFF_LINES)  # the head only: the last item is the rest of the file
    found: list[tuple[int, list[str]]] = []
    for i in range(header_line, len(lines) - (len(lines) > header_line + _SNIFF_LINES)):
        if _is_blank(lines[i], delimiter):
            continue
        cells = [c.strip() for c in next(iter(_split_rows([lines[i]], delimiter)), [])]
        if any(_looks_numeric(c, decimal) for c in cells):
            break
        if len(found) == _MAX_HEADER_ROWS:
            return text, []
        found.append((i + 1, cells))
    else:
        return text, []
    if not any(c for _, cells in found for c in cells):
        return text, []
    for line, _ in found:
        lines[line - 1] = ""
    return "\n".join(lines), found


def _refuse_thousands_points(df: pd.DataFrame, lines: np.ndarray, label: str) -> None:
    """In a table with decimal commas, refuse a column of numbers with a cell such as '1.000': pandas leaves it as
    text and `validate` would read it as 1, where the lab's Excel meant 1000 (a thousands point)."""
    for column in df.columns:
        col = df[column]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        text = col.dropna().astype(str).str.strip()
        text = text[text != ""]
        numbers = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce").notna()
        grouped = text.str.fullmatch(r"[-+]?[1-9]\d{0,2}(?:\.\d{3})+")
        if not text.size or numbers.mean() < 0.5 or not grouped.any():
            continue
        row = df.index.get_loc(grouped[grouped].index[0])
        cell = text[grouped].iloc[0]
        line = lines[row] if len(lines) == len(df) else row + 2
        _raise(
            f"{label}: column '{column}' line {line}: '{cell}' in a file with decimal commas could be "
            f"{float(cell):g} or {cell.replace('.', '')} (a thousands point); remove the thousands separators."
        )


def _only_numbers(line: str) -> bool:
    cells = [c for c in re.split(r"[,;\s]", line) if c.strip()]
    return bool(cells) and all(_looks_numeric(c, ".") for c in cells)


def _blank_leading_comments(text: str, label: str) -> tuple[str, int]:
    """`text` with the lines starting with '#' above the column row blanked (a '# sample: ...' preamble, the
    provenance lines of this tool's own CSV exports), and how many there were. Blanked, not removed: line numbers
    stay the file's. When the line after them holds only numbers, the last one is the column row written as a
    comment (numpy.savetxt's header): it is kept, without its '#' unless '#' names its first column."""
    if not text.lstrip().startswith("#"):
        return text, 0
    lines = text.split("\n")
    comments = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            break
        comments.append(i)
    else:
        _raise(f"{label} holds only comment lines (starting with '#'); expected a header line and data rows.")
    header = lines[comments[-1]].strip()
    if _only_numbers(lines[i]) and not _only_numbers(header.lstrip("#")):
        # '#' names the first column ("#,T (K),..."): the row stays as written; else its '#' goes
        lines[comments.pop()] = header if re.match(r"#\s*[,;\t]", header) else header.lstrip("#").strip()
    for i in comments:
        lines[i] = ""
    return "\n".join(lines), len(comments)


def _source_label(source: Any, name: str) -> str:
    """How messages refer to the input, e.g. "file 'm_vs_t.csv'"."""
    if name == "file":
        if isinstance(source, (str, os.PathLike)):
            name = Path(source).name or str(source)
        elif isinstance(getattr(source, "name", None), str):
            name = Path(source.name).name
    return "the file" if name == "file" else f"file '{name}'"


def _too_big(label: str, size: float, max_mb: float, *, at_least: bool = False) -> DataError:
    size_text = f"{'more than ' if at_least else ''}{size / _MB:.1f} MB"
    return DataError(
        f"{label} is {size_text}, over the limit of {max_mb:g} MB; "
        "set the environment variable MAT_INTERP_MAX_UPLOAD_MB to change the limit."
    )


def _read_bytes(source: Any, *, max_mb: float, label: str) -> bytes:
    """All bytes of `source`, refusing anything over `max_mb` before reading it when the size is known."""
    max_bytes = int(max_mb * _MB)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        if isinstance(source, str) and "\n" in source:
            raise DataError("read_table got CSV text instead of a path; pass the content as bytes (text.encode()).")
        path = Path(source)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise DataError(f"{label} is not a regular file ({path}).")
            if size > max_bytes:
                raise _too_big(label, size, max_mb)
            data = path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"{label} does not exist ({path}).") from None
        except OSError as err:
            raise DataError(f"{label} cannot be read: {err.strerror or err}.") from None
    elif hasattr(source, "getvalue") or hasattr(source, "read"):
        size = getattr(source, "size", None)  # Streamlit's UploadedFile knows its size
        if isinstance(size, int) and size > max_bytes:
            raise _too_big(label, size, max_mb)
        if hasattr(source, "getvalue"):
            data = source.getvalue()
        else:
            data = source.read(max_bytes + 1)  # never more than the limit from an unsized stream
            if len(data) > max_bytes:
                raise _too_big(label, len(data), max_mb, at_least=True)
        data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    else:
        raise TypeError(f"read_table expects a path, bytes or a binary file object, not {type(source).__name__}")
    if len(data) > max_bytes:
        raise _too_big(label, len(data), max_mb)
    return data


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _decode(data: bytes, label: str) -> tuple[str, bytes]:
    """UTF-8 text with BOM removed and line endings normalised to '\\n' (and the matching bytes); UTF-16 with a
    BOM is decoded first (:func:`_from_utf16`)."""
    if not data or data.isspace():
        _raise(f"{label} is empty: it contains no text; expected a header line and data rows.")
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        _raise(f"{label} is UTF-32 text; save it as 'CSV UTF-8' instead.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = _from_utf16(data, label)
    if data.startswith(b"PK\x03\x04"):
        _raise(f"{label} is a zip archive or an Excel workbook (.xlsx), not CSV text; export the sheet as 'CSV UTF-8'.")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        _raise(f"{label} is an old Excel workbook (.xls), not CSV text; export the sheet as 'CSV UTF-8'.")
    nul = data.find(b"\x00")
    if nul >= 0:
        _raise(
            f"{label} is binary, not CSV text: it has a NUL byte at byte offset {nul} (line {_line_of(data, nul)})."
        )
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start + bom
        bad = data[offset : offset + 1].hex().upper()
        _raise(
            f"{label} is not UTF-8 text: byte 0x{bad} at byte offset {offset} (line {_line_of(data, offset)}) "
            "is not valid UTF-8; save the file as UTF-8 (e.g. Excel's 'CSV UTF-8')."
        )
    if not text.strip():
        _raise(f"{label} is empty: it contains no text; expected a header line and data rows.")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if bom or b"\r" in data:
        data = text.encode("utf-8")  # keep the bytes in step with the text for the field counts
    return text, data


def _from_utf16(data: bytes, label: str) -> bytes:
    """UTF-8 bytes of UTF-16 text with a byte-order mark (Windows 'Unicode text', Origin's ASCII exports), the
    BOM telling little- from big-endian; one sentence naming the byte and line where it is not UTF-16."""
    codec = "utf-16-le" if data.startswith(b"\xff\xfe") else "utf-16-be"
    try:
        return data[2:].decode(codec).encode("utf-8")
    except UnicodeDecodeError as err:
        line = data[2 : 2 + err.start].decode(codec).count("\n") + 1
        _raise(f"{label} starts as UTF-16 text (its byte-order mark) but byte offset {err.start + 2} (line {line}) "
               f"is not UTF-16 ({err.reason}); save the file again, as 'CSV UTF-8' if you can.")


def _raise(message: str) -> NoReturn:
    raise DataError(message)


def _is_blank(line: str, delimiter: str) -> bool:
    """Whether pandas skips `line` as blank (only spaces, or tabs when tab is not the delimiter)."""
    return not line.strip(" " if delimiter == "\t" else " \t")


def _sniff(text: str, label: str) -> tuple[str, list[str], int, str]:
    """Detect the delimiter and decimal mark from the first lines; return them with the header cells and line."""
    head = text[:_SNIFF_CHARS]
    stripped = head.lstrip()
    lowered = stripped[:200].lower()
    if lowered.startswith(("<!doctype", "<html", "<?xml", "<head", "<body", "<table")):
        _raise(f"{label} is an HTML or XML document, not CSV text (a saved web page?); export the data as CSV.")
    if stripped[:1] in ("{", "[") and text[-256:].rstrip()[-1:] in ("}", "]"):
        _raise(f"{label} looks like JSON, not CSV text; export the data as CSV with a header line.")
    lines = head.split("\n")
    if len(head) < len(text):
        lines = lines[:-1]  # the last line may be cut
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()][:_SNIFF_LINES]
    if not numbered:  # pragma: no cover - a huge run of whitespace before any text
        _raise(f"{label} starts with more than {_SNIFF_CHARS} blank characters; expected a header line.")

    def score(delimiter: str) -> tuple[bool, float, int]:
        counts = [len(row) for row in csv.reader([line for _, line in numbered], delimiter=delimiter)]
        data = counts[1:]
        agree = sum(c == counts[0] for c in data) / len(data) if data else 1.0
        # Ties go to tab, then ';': a file split consistently by them uses ',' as its decimal mark.
        return counts[0] >= 2, agree, _DELIMITERS.index(delimiter)

    delimiter = max(_DELIMITERS, key=score)
    header_line, header_text = numbered[0]
    header = next(csv.reader([header_text], delimiter=delimiter))
    counts = [len(row) for row in csv.reader([line for _, line in numbered], delimiter=delimiter)]
    if len(header) < 2 or any(c != counts[0] for c in counts[1:]):
        _refuse_preamble(numbered, label)
    if len(header) < 2 and (names := _whitespace_header(numbered, label)):
        delimiter, header = _WHITESPACE, names
    elif len(header) < 2:
        shown = header_text if len(header_text) <= 60 else header_text[:57] + "..."
        _raise(
            f"{label}: line {header_line} ('{shown}') has a single column; "
            "separate the columns with ',', ';' or tab (spaces are not a column separator)."
        )
    decimal = "."
    if delimiter != ",":
        rows = _split_rows([line for _, line in numbered[1:]], delimiter)
        cells = [(number, cell) for (number, _), row in zip(numbered[1:], rows) for cell in row]
        with_comma = [(number, c) for number, c in cells if _DECIMAL_COMMA.fullmatch(c)]
        # in a ';' file '1.000' next to '1,5' is a thousands point, no evidence for decimal points
        points = sum(bool(_DECIMAL_POINT.fullmatch(c)) and not (delimiter == ";" and _GROUPED.fullmatch(c.replace(".", ",")))
                     for _, c in cells)
        grouped = [(number, c) for number, c in with_comma if _GROUPED.fullmatch(c)]
        if len(with_comma) > points:
            decimal = ","
            if delimiter == "\t" and len(grouped) == len(with_comma):
                # '10,000' in a tab file: with decimal points elsewhere the commas group thousands (validate names
                # those cells); with none, 10 and 10000 are both readings: say so rather than guess a factor 1000
                if points:
                    decimal = "."
                else:
                    number, cell = grouped[0]
                    _raise(
                        f"{label}: every number with a comma (e.g. '{cell.strip()}' in line {number}) has groups of "
                        "three digits after it, so the comma may be a thousands separator or a decimal comma; "
                        "remove the thousands separators, or save the file with ';' as the separator if the commas "
                        "are decimal commas."
                    )
    return delimiter, header, header_line, decimal


def _split_rows(lines: list[str], delimiter: str) -> Any:
    """The cells of `lines`: split on runs of whitespace for _WHITESPACE, else as CSV."""
    if delimiter == _WHITESPACE:
        return [line.split() for line in lines]
    return csv.reader(lines, delimiter=delimiter)


def _whitespace_header(numbered: list[tuple[int, str]], label: str) -> list[str] | None:
    """The column names of a table whose columns are separated by runs of spaces or tabs (numpy.savetxt's
    default, aligned lab exports), or None when the data rows do not split into at least 2 fields on whitespace.

    Names with spaces ('Temperature (K)') are kept whole when quoted or when at least two spaces separate the
    names; otherwise a header with more words than the rows have fields, or with a word that is a bracketed unit
    of the word before ('(K)'), cannot be split, and is refused in one sentence. One with fewer words is returned,
    for _check_field_counts to name the rows that do not match it."""
    counts = [len(line.split()) for _, line in numbered[1:]]
    if not counts or max(counts) < 2:
        return None
    n = max(set(counts), key=counts.count)
    header_line, text = numbered[0]
    text = text.strip()
    words = [w for w in next(csv.reader([text], delimiter=" ", skipinitialspace=True)) if w]
    spaced = re.split(r"\s{2,}|\t", text)
    if '"' not in text and len(words) > len(spaced) == n:
        return spaced
    if len(words) < n or (len(words) == n and not any(w[:1] in "([" for w in words)):
        return words if len(words) >= 2 else None
    shown = text if len(text) <= 60 else text[:57] + "..."
    _raise(f"{label}: the columns are separated by spaces, so the names in line {header_line} ('{shown}') cannot be "
           f"told apart ({len(words)} words for {n} columns); separate the columns with tab or ',', or put at least "
           "two spaces between the names.")


def _refuse_preamble(numbered: list[tuple[int, str]], label: str) -> None:
    """Name the lines above the column row when the table starts further down: from some line on, every line of
    the sniffed head has the same number of fields (at least 2) and that line is not all numbers."""
    for delimiter in _DELIMITERS:
        counts = [len(row) for row in csv.reader([line for _, line in numbered], delimiter=delimiter)]
        for j in range(1, len(numbered) - 1):
            if counts[j] >= 2 and counts[j] != counts[j - 1] and all(c == counts[j] for c in counts[j + 1:]):
                line, text = numbered[j]
                if _only_numbers(text):
                    break
                shown = text if len(text) <= 60 else text[:57] + "..."
                first = numbered[0][0]
                one = first == line - 1
                _raise(f"{label}: {f'line {first} comes' if one else f'lines {first}-{line - 1} come'} before the "
                       f"column names in line {line} ('{shown}'); delete {'it' if one else 'them'} or start "
                       f"{'it' if one else 'each'} with '#'.")


def _looks_numeric(cell: str, decimal: str) -> bool:
    cell = cell.strip()
    if decimal == ",":
        cell = cell.replace(",", ".")
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _check_header(header: list[str], header_line: int, label: str, decimal: str) -> list[str]:
    """Stripped column names; reject a missing header, nameless and duplicate columns."""
    names = [cell.strip() for cell in header]
    filled = [n for n in names if n]
    if filled and all(_looks_numeric(n, decimal) for n in filled):
        _raise(
            f"{label} has no header: line {header_line} holds only numbers ({', '.join(filled[:5])}); "
            "the first line must name the columns, e.g. 'T (K),H (Oe),moment (emu)'."
        )
    for i, n in enumerate(names[:-1] if names[-1] == "" else names, start=1):  # a trailing empty name is checked later
        if not n:
            _raise(f"{label}: column {i} in line {header_line} has no name; give every column a name in the header.")
    seen: dict[str, int] = {}
    for i, n in enumerate(names, start=1):
        if n and n in seen:
            _raise(
                f"{label}: the column name '{n}' appears twice in line {header_line} "
                f"(columns {seen[n]} and {i}); column names must be unique."
            )
        seen[n] = i
    return names


def _check_field_counts(
    data: bytes, text: str, delimiter: str, n_fields: int, header_line: int, label: str
) -> np.ndarray:
    """File line numbers of the data rows; reject rows whose field count differs from the header's."""
    quoted = '"' in text and delimiter != _WHITESPACE
    if delimiter == _WHITESPACE:
        lines, counts = _field_counts_whitespace(text)
    elif quoted:
        lines, counts = _field_counts_csv(text, delimiter, label)
    else:
        lines, counts = _field_counts_fast(data, text, delimiter)
    keep = lines > header_line
    lines, counts = lines[keep], counts[keep]
    if len(lines) == 0:
        _raise(f"{label} has a header (line {header_line}) but no data rows.")
    bad = np.flatnonzero(counts != n_fields)
    if len(bad):
        first = bad[0]
        more = ""
        if len(bad) > 1:
            others = ", ".join(str(n) for n in lines[bad[1:_MAX_LISTED]])
            more = f" (also line{'s' if len(bad) > 2 else ''} {others}{', ...' if len(bad) > _MAX_LISTED else ''})"
        fields = f"{counts[first]} field{'s' if counts[first] != 1 else ''}"
        quotes = ' and that every opening quote (") is closed' if quoted else ""
        _raise(
            f"{label}: line {lines[first]} has {fields} but the header (line {header_line}) "
            f"has {n_fields} columns{more}; check that every row has one value per column "
            f"({_DELIMITER_NAMES[delimiter]}-separated){quotes}."
        )
    return lines


def _field_counts_fast(data: bytes, text: str, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    """Field counts of non-blank lines for unquoted text, vectorised (a 10^6-line file in milliseconds)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    ends = newlines if data.endswith(b"\n") else np.append(newlines, len(arr))
    starts = np.concatenate(([0], newlines + 1))[: len(ends)]
    delims = np.flatnonzero(arr == ord(delimiter))
    counts = np.searchsorted(delims, ends) - np.searchsorted(delims, starts) + 1
    nonblank = ends > starts
    for i in np.flatnonzero(nonblank & (counts == 1)):  # only these can be whitespace-only lines
        if _is_blank(data[starts[i] : ends[i]].decode("utf-8"), delimiter):
            nonblank[i] = False
    idx = np.flatnonzero(nonblank)
    return idx + 1, counts[idx]


def _field_counts_whitespace(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Field counts of non-blank lines split on runs of whitespace."""
    counted = [(i, len(line.split())) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
    lines, counts = np.asarray(counted, dtype=np.int64).reshape(-1, 2).T
    return lines, counts


def _field_counts_csv(text: str, delimiter: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Field counts of non-blank records when quotes are present (quoted cells may hold delimiters)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    lines: list[int] = []
    counts: list[int] = []
    start = 1
    try:
        for row in reader:
            if row and not (len(row) == 1 and _is_blank(row[0], delimiter)):
                lines.append(start)
                counts.append(len(row))
            start = reader.line_num + 1
    except csv.Error as err:
        _raise(
            f"{label}: the quotes in line {start} are malformed ({err}); "
            'check that every opening quote (") is closed and directly followed by the delimiter.'
        )
    return np.asarray(lines, dtype=np.int64), np.asarray(counts, dtype=np.int64)


# --------------------------------------------------------------------------- column choice


def _numeric_share(col: pd.Series) -> tuple[float, int]:
    """Fraction of non-empty cells that are numbers, and the number of set points of the numeric values.

    Set points (`setpoints.group`) rather than distinct values: a stepped axis read back with noise still has few.
    """
    if pd.api.types.is_bool_dtype(col):
        return 0.0, 0
    values = pd.to_numeric(col, errors="coerce") if not pd.api.types.is_numeric_dtype(col) else col
    present = int(col.notna().sum())
    numeric = int(values.notna().sum())
    finite = values.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = finite[np.isfinite(finite)]
    try:
        count = len(setpoints.group(finite).values) if finite.size else 0
    except setpoints.SetPointError:
        count = int(np.unique(finite).size)
    return (numeric / present if present else 0.0), count


def guess_columns(df: pd.DataFrame) -> tuple[str, str, str]:
    """A sensible (x1, x2, y) default for the GUI's column pickers.

    Among numeric columns: X2 is the scan axis with the fewest set points (>= 2),
    Y the last numeric column left, X1 the remaining one with most distinct values.
    Falls back to the first three columns when no such choice exists.
    """
    columns = list(df.columns)
    if len(columns) < 3:
        raise DataError(
            f"the table has {len(columns)} column{'s' if len(columns) != 1 else ''} "
            f"({', '.join(repr(str(c)) for c in columns)}); at least 3 are needed (X1, X2 and Y)."
        )
    stats = {c: _numeric_share(df[c]) for c in columns}
    numeric = [c for c in columns if stats[c][0] >= 0.9 and stats[c][1] >= 2]
    if len(numeric) >= 3:
        x2 = min(numeric, key=lambda c: stats[c][1])  # ties: the first column wins
        rest = [c for c in numeric if c != x2]
        y = rest[-1]
        x1 = max(rest[:-1], key=lambda c: stats[c][1])
        return str(x1), str(x2), str(y)
    return str(columns[0]), str(columns[1]), str(columns[2])


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class TrainingData:
    """Validated training data: three float64 columns sorted by (X2 set point, x1), no invalid or repeated points.

    `extra_names` are columns carried along untouched (source file, the moment's standard error, sweep branch);
    `set_point_tol` is the tolerance that groups the X2 readings into set points (see `setpoints`).
    """

    x1_name: str
    x2_name: str
    y_name: str
    frame: pd.DataFrame
    n_dropped: int = 0
    set_point_tol: float = setpoints.DEFAULT_TOLERANCE
    extra_names: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrainingData):
            return NotImplemented
        return (
            (self.x1_name, self.x2_name, self.y_name, self.n_dropped)
            == (other.x1_name, other.x2_name, other.y_name, other.n_dropped)
            and self.frame.equals(other.frame)
        )

    def __hash__(self) -> int:
        return hash((self.x1_name, self.x2_name, self.y_name, self.n_dropped, len(self.frame)))

    @cached_property
    def set_points(self) -> setpoints.SetPoints:
        """The X2 readings grouped into set points (the measured curves)."""
        return setpoints.group(self.frame[self.x2_name].to_numpy(dtype=np.float64), self.set_point_tol,
                               column=self.x2_name)

    @property
    def x2_values(self) -> np.ndarray:
        """Sorted X2 set points (the measured fields, angles, ...; the median of each set point's readings)."""
        return self.set_points.values

    @property
    def x2_set_point(self) -> np.ndarray:
        """Each row's set point (its X2 reading snapped to the curve it belongs to), for curve-by-curve work."""
        return self.set_points.values[self.set_points.labels]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """X of shape (n, 2) as [x1, x2] and y of shape (n,), both float64 copies."""
        x = self.frame[[self.x1_name, self.x2_name]].to_numpy(dtype=np.float64, copy=True)
        y = self.frame[self.y_name].to_numpy(dtype=np.float64, copy=True)
        return x, y

    def to_csv_bytes(self) -> bytes:
        """UTF-8 CSV that `from_csv_bytes` reads back to exactly the same floats."""
        return self.frame.to_csv(index=False, lineterminator="\n").encode("utf-8")

    @classmethod
    def from_csv_bytes(
        cls, data: bytes, x1_name: str, x2_name: str, y_name: str, *,
        set_point_tol: float = setpoints.DEFAULT_TOLERANCE,
    ) -> TrainingData:
        """Read `to_csv_bytes` output back (e.g. from the database), re-checking it."""
        df = read_table(data, max_mb=max(200.0, len(data) / _MB + 1), name="stored training data")
        extra = [str(c) for c in df.columns if c not in (x1_name, x2_name, y_name)]
        return validate(df, x1_name, x2_name, y_name, min_rows=1, set_point_tol=set_point_tol, extra=extra)


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def _rows_text(positions: np.ndarray, lines: np.ndarray) -> str:
    """'rows 4, 9 (lines 5, 10)' for the first few 0-based positions, with '...' when cut."""
    shown = positions[:_MAX_LISTED]
    cut = ", ..." if len(positions) > _MAX_LISTED else ""
    word = "row" if len(positions) == 1 else "rows"
    line_word = "line" if len(positions) == 1 else "lines"
    rows = ", ".join(str(p + 1) for p in shown)
    line_text = ", ".join(str(lines[p]) for p in shown)
    return f"{word} {rows}{cut} ({line_word} {line_text}{cut})"


def _file_lines(df: pd.DataFrame) -> np.ndarray:
    """File line of each row: from read_table's bookkeeping when blank lines shifted them, else row + 1.

    Files merged by readers.load store text labels instead ("11 of file 'b.dat'"): messages only format them."""
    stored = df.attrs.get(_LINES_ATTR)
    if stored is not None and len(stored) == len(df):
        return np.asarray(stored)
    return np.arange(2, len(df) + 2)


def _to_float(df: pd.DataFrame, column: str, role: str, lines: np.ndarray) -> np.ndarray:
    """Column as float64 (empty/NaN cells -> NaN); reject text that is not a number, naming the first bad row."""
    col = df[column]
    if pd.api.types.is_bool_dtype(col):
        raise DataError(f"column '{column}' ({role}) holds True/False values, not numbers; choose a numeric column.")
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    text = col.astype("str").str.strip()
    missing = (col.isna() | (text == "") | text.str.lower().isin(["nan", "-nan", "na", "n/a"])).to_numpy(
        dtype=bool, na_value=True
    )
    values = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(np.isnan(values) & ~missing)
    if len(bad):
        first = bad[0]
        more = f" ({len(bad)} cells in this column are not numbers)" if len(bad) > 1 else ""
        hint = "; choose a numeric column" if len(bad) > len(col) // 2 else ""
        if _THOUSANDS.fullmatch(text.iloc[first]):
            hint = "; remove the thousands separators"
        raise DataError(
            f"column '{column}' row {first + 1} (line {lines[first]}): {str(col.iloc[first])!r} is not a number"
            f"{more}; the {role} column must hold numbers{hint}."
        )
    return values


MAX_NAME_CHARS = 255  # longest column name stored (storage.projects: String(MAX_NAME_CHARS))


def validate(
    df: pd.DataFrame,
    x1: str,
    x2: str,
    y: str,
    *,
    x2_values: Sequence[float] | None = None,
    drop_invalid: bool = False,
    min_rows: int = 20,
    set_point_tol: float = setpoints.DEFAULT_TOLERANCE,
    extra: Sequence[str] = (),
) -> TrainingData:
    """Check the chosen columns of a raw table and return clean `TrainingData`.

    Rejects, naming column and rows: missing or repeated column choices, non-numeric
    cells, empty/NaN/infinite/huge (> 1e30) cells (dropped instead with
    ``drop_invalid``), requested ``x2_values`` absent from the file (only those rows
    are kept otherwise), fewer than 2 distinct X2 values or `min_rows` rows, a
    constant Y, and repeated (X1, X2) points. X2 readings are grouped into set points
    with `set_point_tol` (requested ``x2_values`` match set points); `extra` columns ride along.
    """
    roles = {"X1": x1, "X2": x2, "Y": y}
    available = ", ".join(repr(str(c)) for c in df.columns)
    for role, column in roles.items():
        if column not in df.columns:
            raise DataError(f"the {role} column '{column}' is not in the file; available columns: {available}.")
        if int((df.columns == column).sum()) > 1:
            raise DataError(f"the {role} column '{column}' appears more than once in the table; rename one of them.")
        if len(str(column)) > MAX_NAME_CHARS:
            raise DataError(f"the {role} column '{str(column)[:40]}…' has a name of {len(str(column))} characters; "
                            f"the database keeps at most {MAX_NAME_CHARS}: rename it.")
    chosen = list(roles.items())
    for i, (role_a, col_a) in enumerate(chosen):
        for role_b, col_b in chosen[i + 1 :]:
            if col_a == col_b:
                raise DataError(
                    f"{role_a} and {role_b} are both column '{col_a}'; choose three different columns."
                )

    lines = _file_lines(df)
    values = {role: _to_float(df, column, role, lines) for role, column in roles.items()}
    positions = np.arange(len(df))
    if x2_values is not None:  # first, so that cells in rows nobody asked for do not matter
        values, positions = _keep_x2(values, positions, x2_values, x2, set_point_tol)

    problems: list[str] = []
    invalid = np.zeros(len(positions), dtype=bool)
    for role, column in roles.items():
        v = values[role]
        nan = np.isnan(v)
        inf = np.isinf(v)
        with np.errstate(invalid="ignore"):
            huge = np.abs(v) > _HUGE
        huge &= ~inf
        for mask, what in (
            (nan, "empty or NaN cell"),
            (inf, "infinite value"),
            (huge, f"value too large for training (|value| > {_HUGE:g})"),
        ):
            count = int(mask.sum())
            if count:
                where = np.flatnonzero(mask)
                plural = what.replace("cell", "cells").replace("value", "values", 1) if count > 1 else what
                example = f", e.g. {_fmt(v[where[0]])}" if what.startswith("value too") else ""
                problems.append(
                    f"column '{column}' has {count} {plural}: {_rows_text(positions[where], lines)}{example}"
                )
            invalid |= mask
    n_dropped = 0
    if problems:
        if not drop_invalid:
            raise DataError(
                "; ".join(problems)
                + ". Fix these cells, or drop the rows with --drop-invalid (GUI: tick 'drop invalid rows')."
            )
        n_dropped = int(invalid.sum())
        keep = ~invalid
        values = {role: v[keep] for role, v in values.items()}
        positions = positions[keep]

    after = " after keeping only the requested X2 values" if x2_values is not None else ""
    if n_dropped:
        dropped = f"dropping {n_dropped} invalid row{'s' if n_dropped != 1 else ''}"
        after = f" after {dropped}" if not after else f"{after} and {dropped}"

    try:
        groups = setpoints.group(values["X2"], set_point_tol, column=x2) if len(values["X2"]) else None
    except setpoints.SetPointError as err:
        raise DataError(str(err)) from None
    distinct_x2 = groups.values if groups is not None else np.array([])
    if len(distinct_x2) < 2:
        only = f"only one distinct value, {_fmt(distinct_x2[0])}" if len(distinct_x2) else "no values"
        raise DataError(
            f"the X2 column '{x2}' has {only}{after}; at least 2 distinct X2 values are needed to interpolate between."
        )
    n = len(values["Y"])
    if n < min_rows:
        raise DataError(f"the data has only {n} rows{after}; at least {min_rows} are needed to train a model.")
    if np.ptp(values["Y"]) == 0:
        raise DataError(
            f"the Y column '{y}' is constant (every row is {_fmt(values['Y'][0])}); there is nothing to learn."
        )
    _check_duplicates(values, positions, lines, x1, x2)

    frame = pd.DataFrame({x1: values["X1"], x2: values["X2"], y: values["Y"]})
    extra = [str(c) for c in extra if c not in roles.values()]
    for column in extra:
        frame[column] = df[column].to_numpy()[positions]
    order = np.lexsort((values["X1"], groups.labels))
    frame = frame.iloc[order].reset_index(drop=True)
    data = TrainingData(str(x1), str(x2), str(y), frame, n_dropped, float(set_point_tol), tuple(extra))
    data.__dict__["set_points"] = setpoints.SetPoints(groups.values, groups.labels[order], groups.tolerance,
                                                      groups.spread)  # the cached_property, found once
    return data


def _keep_x2(
    values: dict[str, np.ndarray], positions: np.ndarray, requested: Sequence[float], x2: str, tolerance: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Only rows of the requested X2 set points; reject requested values that are no set point.

    A requested value matches a set point within relative tolerance 1e-9, or, for jittering read-backs,
    within the readings' range or the set-point tolerance times the gap to the neighbouring set points.
    """
    wanted = np.asarray(list(requested), dtype=np.float64)
    if wanted.size == 0:
        raise DataError("no X2 values were requested; give at least two, e.g. 100,1000.")
    finite = np.isfinite(values["X2"])
    try:
        groups = setpoints.group(values["X2"][finite], tolerance, column=x2)
    except setpoints.SetPointError as err:
        raise DataError(str(err)) from None
    present = groups.values
    labels = np.full(len(values["X2"]), -1)
    labels[finite] = groups.labels
    gaps = np.diff(present)
    reach = tolerance * np.minimum(np.append(gaps, np.inf), np.concatenate([[np.inf], gaps]))
    keep = np.zeros(len(values["X2"]), dtype=bool)
    missing = []
    for w in wanted:
        k = int(np.argmin(np.abs(present - w)))
        lo, hi = values["X2"][finite][groups.labels == k].min(), values["X2"][finite][groups.labels == k].max()
        jittered = groups.spread[k] > 0  # exact set points match exactly; read-backs within the tolerance
        near = lo <= w <= hi or abs(present[k] - w) <= reach[k]
        if np.isclose(present[k], w, rtol=_X2_RTOL, atol=0.0) or (jittered and near):
            keep |= labels == k
        else:
            missing.append(w)
    if missing:
        listed = ", ".join(_fmt(v) for v in present[:20]) + (", ..." if len(present) > 20 else "")
        raise DataError(
            f"the requested X2 value{'s' if len(missing) > 1 else ''} {', '.join(_fmt(v) for v in missing)} "
            f"{'are' if len(missing) > 1 else 'is'} not in column '{x2}' (relative tolerance {_X2_RTOL:g}); "
            f"the file has {listed}."
        )
    return {role: v[keep] for role, v in values.items()}, positions[keep]


def _check_duplicates(
    values: dict[str, np.ndarray], positions: np.ndarray, lines: np.ndarray, x1: str, x2: str
) -> None:
    """Reject repeated (X1, X2) points: a model cannot fit two Y values at one point, and R² gets inflated."""
    points = pd.DataFrame({"a": values["X1"], "b": values["X2"], "p": positions})
    dup = points.duplicated(["a", "b"], keep=False).to_numpy()
    if not dup.any():
        return
    groups = points[dup].sort_values(["p"]).groupby(["a", "b"], sort=False)["p"]
    examples = []
    for (a, b), rows in list(groups)[:3]:
        rows = rows.to_numpy()
        row_list = " and ".join(str(p + 1) for p in rows[:5]) + (" ..." if len(rows) > 5 else "")
        line_list = " and ".join(str(lines[p]) for p in rows[:5]) + (" ..." if len(rows) > 5 else "")
        verb = "both have" if len(rows) == 2 else "all have"
        examples.append(f"rows {row_list} (lines {line_list}) {verb} {x1}={_fmt(a)}, {x2}={_fmt(b)}")
    n_points = groups.ngroups
    raise DataError(
        f"{n_points} ({x1}, {x2}) point{'s appear' if n_points > 1 else ' appears'} more than once: "
        + "; ".join(examples)
        + ". Remove or average the repeated measurements."
    )


# --------------------------------------------------------------------------- typed values


def _parse_number(item: str, what: str, context: str) -> float:
    item = item.strip()
    if not _NUMBER.fullmatch(item):
        if item.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise DataError(f"{what}: {context} '{item}' is not a finite number.")
        raise DataError(f"{what}: {context} '{item}' is not a number.")
    value = float(item)
    if not math.isfinite(value):
        raise DataError(f"{what}: {context} '{item}' is not a finite number.")
    return value


def parse_values(text: str, *, what: str) -> list[float]:
    """Parse "v1,v2,..." (spaces allowed) into floats, naming `what` (e.g. "--x2-values") on errors."""
    example = "e.g. 100,1000,5000"
    if text is None or not str(text).strip():
        raise DataError(f"{what} is empty; give numbers separated by commas, {example}.")
    items = str(text).split(",")
    result = []
    for i, item in enumerate(items, start=1):
        if not item.strip():
            raise DataError(f"{what}: item {i} of '{text}' is empty; give numbers separated by commas, {example}.")
        result.append(_parse_number(item, what, f"item {i}"))
    return result


def parse_axis(text: str, *, what: str) -> np.ndarray:
    """Parse "START:STOP:STEP" (STOP included) or "v1,v2,..." into a sorted float64 axis.

    Points are START + k * STEP for integer k (no accumulated float drift); STOP is
    included when it lies on the grid within a relative tolerance of 1e-9.
    """
    if text is None or not str(text).strip():
        raise DataError(f"{what} is empty; give START:STOP:STEP (e.g. 2:300:0.5) or values like 100,1000,5000.")
    text = str(text).strip()
    if ":" not in text:
        return np.unique(np.asarray(parse_values(text, what=what), dtype=np.float64))
    parts = text.split(":")
    if len(parts) != 3:
        raise DataError(f"{what}: '{text}' is not START:STOP:STEP (e.g. 2:300:0.5); it has {len(parts)} parts.")
    start, stop, step = (_parse_number(p, what, name) for p, name in zip(parts, ("START", "STOP", "STEP")))
    if step <= 0:
        raise DataError(f"{what}: STEP must be positive, got {_fmt(step)} in '{text}'.")
    if stop < start:
        raise DataError(f"{what}: STOP ({_fmt(stop)}) is below START ({_fmt(start)}) in '{text}'.")
    span = (stop - start) / step
    n_steps = math.floor(span + _AXIS_RTOL * max(1.0, span))
    from .config import get_settings  # late: the settings are read when needed, not at import

    limit = get_settings().max_grid_points
    if n_steps + 1 > limit:
        raise DataError(
            f"{what}: '{text}' gives {n_steps + 1:,} points, over the limit of {limit:,}; "
            "use a larger STEP or set MAT_INTERP_MAX_GRID_POINTS."
        )
    axis = start + np.arange(n_steps + 1, dtype=np.float64) * step
    if n_steps > 0 and math.isclose(axis[-1], stop, rel_tol=_AXIS_RTOL, abs_tol=_AXIS_RTOL * step):
        axis[-1] = stop
    return axis


def make_grid(
    x1: np.ndarray,
    x2: np.ndarray,
    *,
    max_points: int = 5_000_000,
    names: tuple[str, str] = ("x1", "x2"),
) -> pd.DataFrame:
    """Cartesian grid of two axes as a two-column frame, ordered by x2 then x1 (x1 varies fastest)."""
    a = np.asarray(x1, dtype=np.float64).ravel()
    b = np.asarray(x2, dtype=np.float64).ravel()
    for axis, name in ((a, names[0]), (b, names[1])):
        if axis.size == 0:
            raise DataError(f"the {name} axis of the grid is empty; give at least one value.")
        if not np.isfinite(axis).all():
            first = axis[~np.isfinite(axis)][0]
            raise DataError(f"the {name} axis of the grid has a non-finite value ({_fmt(first)}).")
    if names[0] == names[1]:
        raise DataError(f"the two grid axes have the same name '{names[0]}'; give them different names.")
    count = a.size * b.size
    if count > max_points:
        raise DataError(
            f"the grid has {count:,} points ({a.size:,} x {b.size:,}), over the limit of {max_points:,}; "
            "use coarser axes or set MAT_INTERP_MAX_GRID_POINTS."
        )
    return pd.DataFrame({names[0]: np.tile(a, b.size), names[1]: np.repeat(b, a.size)})


def validate_project_name(name: str) -> str:
    """Return `name` if it is a safe project name (it becomes part of study names and paths)."""
    if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
        text = name if isinstance(name, str) else ""
        shown = repr(name) if isinstance(name, str) else type(name).__name__
        bad = sorted({c for c in text if not (c.isascii() and (c.isalnum() or c in "._-"))})
        detail = f" (not allowed: {' '.join(repr(c) for c in bad)})" if bad else ""
        raise DataError(
            f"project name {shown} is not allowed{detail}: use 1 to 64 characters from letters, digits, "
            "'-', '_' and '.', starting with a letter or digit."
        )
    return name
