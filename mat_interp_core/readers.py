"""Instrument files in: Quantum Design ``.dat`` beside CSV/TSV, several files per project, units and mass.

:func:`load` reads one or more files (one per field or per temperature, say)
into one raw table, each row keeping its source file, and returns what the
files themselves say: the unit in each column header, the sample mass
(``INFO,<mass>,SAMPLE_MASS`` in a ``.dat`` header: :func:`sample_mass_mg`), the moment column an
instrument file means, and each file's name, size and SHA-256 (provenance).
:func:`prepare` turns a loaded table and the user's choices (columns, roles,
set-point tolerance, sweep branch) into validated `TrainingData`. Everything
rejected raises `DataError` with one sentence naming the file, column or row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import dataset, entropy, setpoints
from .dataset import DataError, TrainingData

__all__ = [
    "SOURCE_COLUMN",
    "SWEEP_COLUMN",
    "Loaded",
    "canonical_unit",
    "Roles",
    "is_quantum_design",
    "first_sweep",
    "guess_columns",
    "guess_roles",
    "load",
    "prepare",
    "project_units",
    "describe_sources",
    "read_quantum_design",
    "sample_mass_mg",
    "sweep_directions",
    "unit_in_name",
]

SOURCE_COLUMN = "source file"
SWEEP_COLUMN = "sweep"
_UNIT = re.compile(r"[\(\[]\s*([^\)\]]+?)\s*[\)\]]\s*$")
_CANONICAL = {  # spelling in a header (lower case, spaces squeezed) -> unit name used by mat_interp_core.entropy
    "k": "K",
    "oe": "Oe",
    "koe": "kOe",
    "mt": "mT",
    "millitesla": "mT",
    "t": "T",
    "tesla": "T",
    "a/m": "A/m",
    "emu": "emu",
    "emu/g": "emu/g",
    "a m2/kg": "A m2/kg",
    "am2/kg": "A m2/kg",
    "a m^2/kg": "A m2/kg",
    "a·m²/kg": "A m2/kg",
    "am^2/kg": "A m2/kg",
    "am²/kg": "A m2/kg",
    "a m²/kg": "A m2/kg",
    "a·m2/kg": "A m2/kg",
    "a m2 kg-1": "A m2/kg",
    "a m^2 kg^-1": "A m2/kg",
    "emu g-1": "emu/g",
    "emu g^-1": "emu/g",
    "mub/f.u.": "muB/f.u.",
    "mub/fu": "muB/f.u.",
    "µb/f.u.": "muB/f.u.",  # the micro sign; the Greek mu is folded into it first
    "µb/fu": "muB/f.u.",
    "µ_b/f.u.": "muB/f.u.",
}
_KNOWN_UNITS = frozenset(_CANONICAL.values())
TEMPERATURE_UNITS = ("K",)
FIELD_UNITS = ("Oe", "kOe", "mT", "T", "A/m")
MOMENT_UNITS = ("emu", "emu/g", "A m2/kg", "muB/f.u.")
MASS_MG_FROM = 1.0  # without a telling moment, a .dat's SAMPLE_MASS at least this is in mg, a smaller one grams
PLAUSIBLE_EMU_PER_G = (0.3, 250.0)  # a magnetic sample's largest specific moment (Gd: 266 emu/g), to tell mg from g
SWEEP_JITTER = 0.2  # a step shorter than this fraction of a curve's long steps is jitter (sweep_directions)
FEW_FIELD_POINTS = 3  # curves along the field with at most this many points get a note (prepare's 'data_notes')
# Moment columns of MPMS3 / MPMS-XL / PPMS files, most trusted first (the free-centre fit follows a drifting sample).
_MOMENT_PREFERENCE = ("moment", "dc moment free ctr", "dc moment fixed ctr", "long moment", "m-dc", "m-reg",
                      "m. (emu)")  # "M-DC": the ACMS's DC moment, beside its AC M' and M''
_SPREAD = re.compile(r"err|std|dev")  # a moment's standard error or deviation ("M-Std.Dev." of the ACMS), no moment
# AC susceptibility moments (ACMS / ACMS II "M' (emu)", "M'' (emu)"; MPMS3 "AC Moment (emu)"): no DC magnetisation.
# "M. Raw' (emu)" (MPMS3 VSM) is a DC signal despite its prime.
_AC = re.compile(r"^(ac\b|(m|x|chi|χ)\s*'+)")
# A magnetisation by its name ("M", "Moment", "Magnetization", "µ0M"), not "Magnetic Field" or "mu0H".
_MAGNETISATION = re.compile(r"^(([µμ]|mu)_?0\s*)?(m|moment|magneti[sz]ation)\b")


def unit_in_name(column: str) -> str:
    """The unit a header names, e.g. 'Temperature (K)' -> 'K', 'M [A m2/kg]' -> 'A m2/kg', 'M/emu' -> 'emu'; else ''.

    Known magnetometer spellings map to the names the entropy code uses; others in brackets come back as written.
    """
    match = _UNIT.search(str(column))
    return canonical_unit(match.group(1)) if match else _slash_unit(column)[1]


def canonical_unit(unit: str) -> str:
    """A unit as the entropy code names it ('oe' -> 'Oe', 'Am^2/kg' -> 'A m2/kg', 'μB/f.u.' -> 'muB/f.u.'), from a
    header or an option such as --y-unit; a spelling not known comes back as written."""
    raw = str(unit).strip()
    return _CANONICAL.get(" ".join(raw.lower().replace("μ", "µ").split()), raw)


def _slash_unit(column: str) -> tuple[str, str]:
    """(quantity, unit) of a header in the IUPAC 'quantity/unit' style ('M/emu', 'T/K', 'M/(A m2/kg)'), else
    (header, ''). Split at the first slash only when what follows is a known unit: 'M/H', 'dM/dT', 'T/T_c' or a
    column named 'emu/g' are names, not a quantity in a unit."""
    quantity, slash, rest = str(column).partition("/")
    rest = rest.strip()
    if rest[:1] == "(" and rest[-1:] == ")":
        rest = rest[1:-1]
    unit = canonical_unit(rest)
    if not slash or not quantity.strip() or unit not in _KNOWN_UNITS:
        return str(column), ""
    return quantity.strip(), unit


def _base_name(column: str) -> str:
    """The header without its unit, lower case ('Moment (emu)' -> 'moment', 'M/emu' -> 'm')."""
    name = _UNIT.sub("", str(column)).strip()
    if name != str(column).strip():
        return name.rstrip("/").strip().lower()  # 'M/(A m2/kg)': the brackets held the unit
    return _slash_unit(name)[0].lower()


# --------------------------------------------------------------------------- Quantum Design .dat


def is_quantum_design(text: str) -> bool:
    """Whether text (BOM and line ends already normalised) is a Quantum Design file: it opens with [Header]."""
    return text.lstrip()[:8].lower() == "[header]"


_DATA_LINE = re.compile(r"^[ \t]*\[data\][ \t,]*$", re.IGNORECASE | re.MULTILINE)  # ',,,': saved again by Excel


def _instrument_text(data: bytes, label: str, notes: list[str]) -> str:
    """The file's text (:func:`dataset._decode`). A Quantum Design file that is not UTF-8 is read as Windows
    text (cp1252, else Latin-1): MultiVu writes the user's title and comments in the Windows code page, and a
    'Müller' in the header should not stop the upload. Any other file must be UTF-8, as before."""
    try:
        return dataset._decode(data, label)[0]
    except DataError:
        if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM before text that is not UTF-8 after all
            data = data[3:]
        if not is_quantum_design(data[:256].decode("latin-1")):
            raise
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    notes.append(f"{label} is not UTF-8: read as Windows text (cp1252), as MultiVu writes it")
    return dataset._decode(text.encode("utf-8"), label)[0]


def sample_mass_mg(value: float, peak_emu: float | None = None) -> tuple[float, str, bool]:
    """A .dat header's SAMPLE_MASS in mg, how it was read (shown to the user, who can override the mass), and
    whether that deserves a note (anything but the plain grams reading of a value that looks like grams).

    MultiVu's Sample Properties take the mass in mg; files made to the tool's own layout (its tests, the issue)
    write grams. With the file's largest moment in emu (`peak_emu`), the reading that puts the specific moment
    inside PLAUSIBLE_EMU_PER_G wins (the two readings differ by 1000, more than that range spans, so at most one
    fits). Without it, or when neither fits, a value of MASS_MG_FROM or more is mg (as grams it would be no
    magnetometer sample) and a smaller one grams, and the text says it is a guess.
    """
    lo, hi = PLAUSIBLE_EMU_PER_G
    per_g = {mg: peak_emu / (mg * 1e-3) for mg in (value, value * 1e3)} if peak_emu and value > 0 else {}
    fits = [mg for mg, m in per_g.items() if lo <= m <= hi]
    mg = fits[0] if len(fits) == 1 else (value if value >= MASS_MG_FROM else value * 1e3)
    text = (f"SAMPLE_MASS {value:g} read as mg" if mg == value else f"SAMPLE_MASS {value:g} g = {mg:g} mg")
    why = ""
    if len(fits) == 1:
        other = per_g[value * 1e3 if mg == value else value]
        if (mg == value) != (value >= MASS_MG_FROM):  # the moment overrules the value's size: say why
            why = f" (the largest moment is then {per_g[mg]:.3g} emu/g; read the other way, {other:.3g} emu/g)"
        elif mg == value:
            why = f" (MultiVu's unit; as grams the largest moment would be {other:.3g} emu/g)"
    elif per_g:
        why = (f" (a guess: the largest moment would be {per_g[mg]:.3g} emu/g, outside {lo:g}-{hi:g} emu/g either "
               f"way; check the sample mass)")
    elif mg == value:
        why = f" (MultiVu's unit; {value:g} g is no magnetometer sample)"
    return mg, text + why, mg == value or bool(why)


_MASS_VALUE = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Zµμ]*)$")
_MASS_UNITS = {"": None, "mg": 1.0, "g": 1e3, "grams": 1e3, "µg": 1e-3, "μg": 1e-3, "ug": 1e-3}  # unit -> mg per unit
_MASS_COLUMN = re.compile(r"^(sample )?mass$")  # a data column "Mass (grams)", "Sample Mass (mg)" (PPMS VSM, ACMS)


def _sample_mass(cells: list[str], where: str) -> tuple[float | None, str | None, str | None] | None:
    """(value, unit, problem) of a header line giving SAMPLE_MASS, else None.

    MultiVu writes ``INFO,<mass>,SAMPLE_MASS``; other writers ``INFO,SAMPLE_MASS,<mass>``, some with a unit
    ('12.3 mg', '0.0123 g'). An empty value or 0 is no mass (MultiVu writes 0 when none was entered); a value
    that is no positive mass is returned as a problem sentence, raised only when the mass is needed.
    """
    if len(cells) < 3 or cells[0].upper() != "INFO":
        return None
    if cells[2].upper() == "SAMPLE_MASS":
        raw = cells[1]
    elif cells[1].upper() == "SAMPLE_MASS":
        raw = cells[2]
    else:
        return None
    if not raw:
        return None
    match = _MASS_VALUE.match(raw)
    unit = match.group(2).lower().replace("μ", "µ") if match else ""
    if not match or unit not in _MASS_UNITS:
        return None, None, (f"{where}: SAMPLE_MASS '{raw}' is not a mass (a number, optionally with mg or g); fix it "
                            "or give the mass yourself (--mass-mg, Data page: 'Sample mass').")
    value = float(match.group(1))
    if value == 0:
        return None
    if not (np.isfinite(value) and value > 0):
        return None, None, (f"{where}: SAMPLE_MASS '{raw}' is not a positive mass; fix it or give the mass yourself "
                            "(--mass-mg, Data page: 'Sample mass').")
    return value, (unit or None), None


def _cell_counts(lines: list[str]) -> list[int]:
    """Cells per comma-separated line (quotes respected when there are any)."""
    if any('"' in line for line in lines):
        return [len(row) for row in csv.reader(lines)]
    return [line.count(",") + 1 for line in lines]


def read_quantum_design(text: str, label: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The [Data] table of a Quantum Design file and what its [Header] says.

    `text` has '\\n' line ends. Returns (frame, header) where header has 'sample_mass' (the number, or None),
    'mass_unit' ('mg', 'g', 'µg' when the file names it, else None), 'mass_problem' (a sentence when SAMPLE_MASS
    is unreadable, else None), 'comment_rows' (rows of the data that only carry a comment) and 'notes'. Lines
    starting with ';' are comments; empty cells (a failed fit) are NaN. A last line the file ends inside of (fewer
    cells than the column row, no line end) is left out with a note; a row with more non-empty cells than the
    column row names is refused. The frame's attrs carry each row's line in the file (for validate's messages).
    """
    found = _DATA_LINE.search(text)
    if found is None:
        raise DataError(f"{label} has a [Header] block but no [Data] line; it holds no measurement table.")
    lines = text[: found.start()].split("\n")
    data_at = len(lines) - 1
    mass, unit, problem = None, None, None
    for number, line in enumerate(lines[:data_at], start=1):
        read = _sample_mass([c.strip() for c in line.split(",")], f"{label} line {number}")
        if read is not None:
            mass, unit, problem = read
    notes: list[str] = []
    body = text[found.end() :].split("\n")  # body[i] is line data_at + 1 + i of the file (1-based)
    kept = [i for i, line in enumerate(body) if line.strip() and not line.lstrip().startswith(";")]
    rows = [body[i] for i in kept]
    if not rows:
        raise DataError(f"{label}: the [Data] section (line {data_at + 1}) has no header row and data rows.")
    counts = _cell_counts(rows)
    named, column_line = counts[0], data_at + 1 + kept[0]
    if len(rows) > 1 and not text.endswith("\n") and counts[-1] < named and (len(rows) < 3 or counts[-2] >= named):
        notes.append(f"{label} line {data_at + 1 + kept[-1]} is cut short ({counts[-1]} of {named} cells; the file "
                     "ends inside it): left out")
        rows, kept, counts = rows[:-1], kept[:-1], counts[:-1]
    if len(rows) < 2:
        raise DataError(f"{label}: the [Data] section (line {data_at + 1}) names its columns (line {column_line}) "
                        "but has no data rows.")
    widest = max(counts)
    if widest > named:
        for j in (j for j, c in enumerate(counts) if c > named):
            cells = next(csv.reader([rows[j]]))
            if any(c.strip() for c in cells[named:]):
                raise DataError(
                    f"{label} line {data_at + 1 + kept[j]} has {counts[j]} cells but the column row (line "
                    f"{column_line}) names {named}; remove the stray cells or name their columns."
                )
        rows[0] += "," * (widest - named)  # empty cells past the last named column (trailing commas): unnamed, dropped
    try:
        frame = pd.read_csv(io.StringIO("\n".join(rows)), sep=",", header=0, index_col=False, engine="c",
                            skip_blank_lines=True, low_memory=False)
    except (pd.errors.ParserError, ValueError) as err:
        problem_text = " ".join(str(err).split()).rstrip(".")
        raise DataError(f"{label}: the [Data] table (from line {column_line}) could not be read as comma-separated "
                        f"values ({problem_text}).") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.loc[:, [not c.startswith("Unnamed:") or frame[c].notna().any() for c in frame.columns]]
    line_numbers = data_at + 1 + np.asarray(kept[1:]) if len(frame) == len(rows) - 1 else None
    comment_rows = 0
    if "Comment" in frame.columns:
        numeric = frame.drop(columns="Comment").select_dtypes("number")
        only_comment = frame["Comment"].notna() & numeric.isna().all(axis=1)
        comment_rows = int(only_comment.sum())
        if comment_rows == len(frame):
            raise DataError(f"{label}: the [Data] table (from line {column_line}) holds only comment rows, no "
                            "measured point.")
        frame = frame.loc[~only_comment]
        if line_numbers is not None:
            line_numbers = line_numbers[~only_comment.to_numpy()]
        if frame["Comment"].isna().all():
            frame = frame.drop(columns="Comment")
    frame = frame.reset_index(drop=True)
    if line_numbers is not None:
        frame.attrs[dataset._LINES_ATTR] = line_numbers
    return frame, {"sample_mass": mass, "mass_unit": unit, "mass_problem": problem, "comment_rows": comment_rows,
                   "notes": notes}


# --------------------------------------------------------------------------- several files


@dataclass
class Loaded:
    """Raw rows of one or more files with what the files say about themselves."""

    frame: pd.DataFrame
    sources: list[dict[str, Any]]  # name, size (bytes), sha256, rows
    units: dict[str, str]  # column -> unit read from its header
    mass_mg: float | None = None  # from SAMPLE_MASS, else from a constant mass column of the data
    mass_text: str = ""  # how SAMPLE_MASS was read (sample_mass_mg) or which column gave the mass
    mass_source: str = "SAMPLE_MASS"  # where in the file the mass came from (project_units' 'mass_from')
    mass_problem: str | None = None  # why an unreadable SAMPLE_MASS was not taken (raised if no mass is given)
    moment: str | None = None  # the moment column an instrument file means
    stderr: str | None = None  # its standard-error column
    empty_moments: int = 0  # rows dropped because the moment cell was empty (a failed fit)
    comment_rows: int = 0
    instrument: bool = False  # a Quantum Design file
    notes: list[str] = field(default_factory=list)

    def column_of(self, units: Sequence[str], word: str = "") -> str | None:
        """The first numeric column whose header unit is one of `units` (preferring names containing `word`)."""
        hits = [c for c, u in self.units.items() if u in units and _numeric_like(self.frame[c])]
        preferred = [c for c in hits if word and word in c.lower()]
        return (preferred or hits or [None])[0]


def _numeric_like(col: pd.Series) -> bool:
    """Numbers, or text of which most non-empty cells are numbers (a garbled cell is validate's to name, by line,
    when the column is chosen; it should not make the column vanish from the guesses)."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return True
    if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
        return False
    text = col.dropna().astype(str).str.strip()
    text = text[text != ""]
    return bool(text.size) and float(pd.to_numeric(text, errors="coerce").notna().mean()) >= 0.5


def _file_bytes(source: Any, max_mb: float) -> tuple[str, bytes]:
    """(name, bytes) of a path, an uploaded file or a (name, bytes) pair, refusing files over `max_mb`."""
    name = Path(getattr(source, "name", None) or str(source)).name if not isinstance(source, tuple) else source[0]
    content = source[1] if isinstance(source, tuple) else source
    return name, dataset._read_bytes(content, max_mb=max_mb, label=f"file '{name}'")


def _moment_column(frame: pd.DataFrame, units: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The moment column and its standard-error column. The most trusted fit among the columns at least half as
    filled as the fullest (a fit that failed on a few rows still beats a raw signal such as "M. Raw' (emu)" that
    is always written; a column MultiVu leaves empty in this mode does not), then the most filled."""
    cands = [c for c, u in units.items() if u in MOMENT_UNITS and not _SPREAD.search(_base_name(c))
             and not _AC.search(_base_name(c)) and _numeric_like(frame[c])]
    if not cands:
        return None, None
    filled = {c: int(frame[c].notna().sum()) for c in cands}
    fullest = max(filled.values())

    def rank(c: str) -> tuple[bool, int, int]:
        base = _base_name(c)
        pref = next((i for i, p in enumerate(_MOMENT_PREFERENCE) if base == p or base.startswith(p)), len(_MOMENT_PREFERENCE))
        return filled[c] >= 0.5 * fullest, -pref, filled[c]

    moment = max(cands, key=rank)
    base = _base_name(moment)
    errs = [c for c, u in units.items() if u == units[moment] and _SPREAD.search(_base_name(c))]
    # MultiVu's pairs: "Moment" / "M. Std. Err.", "DC Moment Free Ctr" / "DC Moment Err Free Ctr"
    named = {"m. std. err."} if base == "moment" else {base.replace("moment", "moment err", 1)}
    exact = [c for c in errs if _base_name(c) in named]
    words = set(base.split()) - {"moment"}
    stderr = exact[0] if exact else max(errs, key=lambda c: (len(words & set(_base_name(c).split())), -errs.index(c)),
                                        default=None)
    return moment, stderr


def _units_row(frame: pd.DataFrame, rows: Sequence[tuple[int, list[str]]], label: str,
               notes: list[str]) -> pd.DataFrame:
    """`frame` with the units of a units row under the column names (an Origin export: names, then 'K,Oe,emu',
    then maybe a comments row; read_table left them out as :data:`dataset.HEADER_ROWS_ATTR`) put in the names,
    'Temperature' -> 'Temperature (K)', so that everything reads them as header units; a note names each row.

    The units row is the first of them with a known unit in a cell; a name that already carries a unit keeps it
    when the row agrees, and one sentence names the column when it does not."""
    at = next((k for k, (_, cells) in enumerate(rows) if any(canonical_unit(c) in _KNOWN_UNITS for c in cells)), None)
    said, renamed = [], {}
    if at is not None:
        line, cells = rows[at]
        for column, cell in zip(frame.columns, cells):
            own = unit_in_name(column)
            if cell and own and own != canonical_unit(cell):
                raise DataError(f"{label}: the column '{column}' is in {own} by its name but in {cell} by the units "
                                f"row (line {line}); correct one of them.")
            if cell and not own:
                renamed[column] = f"{column} ({cell})"
        clash = next((new for new in renamed.values() if new in frame.columns), None)
        if clash:
            raise DataError(f"{label}: the units row (line {line}) makes a second column '{clash}'; rename one of them.")
        frame = frame.rename(columns=renamed)
        read = ": read as " + ", ".join(f"'{new}'" for new in renamed.values()) if renamed else ""
        said.append(f"line {line} gives the units under the column names ({', '.join(c for c in cells if c)}){read}")
    for line, cells in (row for k, row in enumerate(rows) if k != at):
        said.append(f"line {line} skipped (no numbers: {', '.join(repr(c) for c in cells if c)})")
    notes.append(f"{label}: " + "; ".join(said))
    return frame


def _files_text(names: Sequence[str]) -> str:
    """"file 'a.dat'" or "files 'a.dat', 'b.dat'"."""
    return ("file " if len(names) == 1 else "files ") + ", ".join(f"'{n}'" for n in names)


def _mass_column(frame: pd.DataFrame, label: str) -> tuple[str, float, str, str | None] | None:
    """(column, value, unit, problem) of a data column holding the sample mass ('Mass (grams)', 'mass/mg', 'mass [g]'),
    for a file whose [Header] gives no SAMPLE_MASS; None without one. Empty cells and 0 are no mass (as in the
    header); a column whose masses differ is returned with a problem sentence instead of a value."""
    for column in frame.columns:
        name, unit = _base_name(column), unit_in_name(column)
        if not unit:  # 'mass/mg': mass units are no header units elsewhere (a column 'emu/g' is a name), so split here
            name, _, unit = str(column).partition("/")
        unit = unit.strip().lower().replace("μ", "µ")
        if not _MASS_COLUMN.match(name.strip().lower()) or not _MASS_UNITS.get(unit):
            continue
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        values = np.unique(values[np.isfinite(values) & (values > 0)])
        if values.size == 0:
            continue
        if values[-1] - values[0] <= 1e-9 * values[-1]:
            return column, float(values[0]), unit, None
        shown = ", ".join(f"{v:g}" for v in values[:3]) + (", ..." if values.size > 3 else "")
        return column, float("nan"), unit, (
            f"{label}: the column '{column}' holds {values.size} different sample masses ({shown} {unit}), so it "
            "gives no mass; load one sample's files or give the mass yourself (--mass-mg, Data page: 'Sample mass')."
        )
    return None


def _refuse_ac_only(frame: pd.DataFrame, units: Mapping[str, str], dc: str | None, names: Sequence[str]) -> None:
    """Refuse an instrument table whose only filled moments are AC ones (an AC susceptibility measurement):
    trained as the moment, M' would give a |ΔS_M| that looks right and is not."""
    ac = [c for c, u in units.items() if u in MOMENT_UNITS and _AC.search(_base_name(c)) and frame[c].notna().any()]
    if not ac:
        return
    where = _files_text(names)
    verb = "holds" if len(names) == 1 else "hold"
    empty = f" ('{dc}' is empty)" if dc else ""
    raise DataError(
        f"{where} {verb} no DC moment{empty}, only the AC moment columns " + ", ".join(f"'{c}'" for c in ac)
        + "; an AC in-phase moment (M') is not the DC magnetisation M(T, H) that |ΔS_M| is derived from, so load "
        "a DC measurement (a 'Moment (emu)' or 'M-DC (emu)' column)."
    )


def load(sources: Sequence[Any], *, max_mb: float = 200.0) -> Loaded:
    """Read and merge `sources` (paths, uploaded files or (name, bytes) pairs): CSV/TSV or Quantum Design .dat.

    Several files become one table with a 'source file' column. Rejects, in one
    sentence: files of one project whose headers give different units for the same
    quantity, or different sample masses. In instrument files, rows whose moment is
    empty (the fit failed) are dropped and counted.
    """
    if not sources:
        raise DataError("no file was given; give one or more CSV or Quantum Design .dat files.")
    frames, infos, masses, units, lines = [], [], {}, {}, []
    loaded = Loaded(frame=pd.DataFrame(), sources=[], units={})
    for source in sources:
        name, data = _file_bytes(source, max_mb)
        label = f"file '{name}'"
        sha = hashlib.sha256(data).hexdigest()
        text = _instrument_text(data, label, loaded.notes)
        if is_quantum_design(text):
            frame, header = read_quantum_design(text, label)
            loaded.instrument = True
            loaded.comment_rows += header["comment_rows"]
            loaded.notes.extend(header["notes"])
            if header["sample_mass"] is not None:
                masses[name] = (header["sample_mass"], header["mass_unit"])
            elif header["mass_problem"] and loaded.mass_problem is None:
                loaded.mass_problem = header["mass_problem"]
        else:
            frame = dataset.read_table(data, max_mb=max_mb, name=name)
            skipped = frame.attrs.pop(dataset.COMMENTS_ATTR, 0)
            if skipped:
                loaded.notes.append(f"{label}: skipped {skipped} comment line{'s' if skipped > 1 else ''} ('#') "
                                    "above the column names (a sample mass there is not read: give --mass-mg)")
            rows = frame.attrs.pop(dataset.HEADER_ROWS_ATTR, None)
            if rows:
                frame = _units_row(frame, rows, label, loaded.notes)
        for column in frame.columns:
            unit = unit_in_name(column)
            base = _base_name(column)
            if unit in FIELD_UNITS and _MAGNETISATION.match(base):  # 'M/T' is no field
                raise DataError(
                    f"{label}: the column '{column}' gives the magnetisation in {unit}, a field unit (μ0M, or M per "
                    "volume), which cannot be turned into a moment per mass without the sample's density; convert it "
                    "to emu/g or A m2/kg and name that unit in its header, as in 'M (emu/g)'."
                )
            if unit and base in units and units[base][0] != unit:
                raise DataError(
                    f"files of one project give '{base}' in different units: '{units[base][1]}' in file "
                    f"'{units[base][2]}' but '{column}' in file '{name}'; convert them to one unit first."
                )
            if unit:
                units.setdefault(base, (unit, column, name))
        infos.append({"name": name, "size": len(data), "sha256": sha, "rows": len(frame)})
        if len(sources) > 1:  # validate's messages name each merged row by its file and its line there
            known = dataset._LINES_ATTR in frame.attrs or not is_quantum_design(text)  # a CSV's: row + 2 unless kept
            lines.append([f"{n} of file '{name}'" for n in dataset._file_lines(frame)] if known else None)
            frame.attrs.pop(dataset._LINES_ATTR, None)  # pd.concat cannot compare arrays in attrs
            frame = frame.assign(**{SOURCE_COLUMN: name})
        frames.append(frame)
    in_mg = [v * _MASS_UNITS[u] if u else v for v, u in masses.values()]  # a unitless value as written
    if len(set(np.round(in_mg, 12))) > 1:
        listed = ", ".join(f"{v:g}{' ' + u if u else ''} in '{n}'" for n, (v, u) in masses.items())
        raise DataError(f"the files give different sample masses (SAMPLE_MASS {listed}); load one sample's files "
                        "together.")
    frame = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    if len(frames) == 1 and dataset._LINES_ATTR in frames[0].attrs:
        frame.attrs[dataset._LINES_ATTR] = frames[0].attrs[dataset._LINES_ATTR]
    elif len(frames) > 1 and all(part is not None for part in lines):
        frame.attrs[dataset._LINES_ATTR] = np.array([label for part in lines for label in part], dtype=object)
    loaded.frame, loaded.sources = frame, infos
    loaded.units = {c: unit_in_name(c) for c in frame.columns if unit_in_name(c)}
    loaded.moment, loaded.stderr = _moment_column(frame, loaded.units)
    if loaded.instrument and (loaded.moment is None or frame[loaded.moment].isna().all()):
        _refuse_ac_only(frame, loaded.units, loaded.moment, [i["name"] for i in infos])
    if masses:
        value, unit = next(iter(masses.values()))
        if unit:  # the file names the unit: nothing to guess
            loaded.mass_mg = value * _MASS_UNITS[unit]
            loaded.mass_text = f"SAMPLE_MASS {value:g} {unit}" + ("" if unit == "mg" else f" = {loaded.mass_mg:g} mg")
        else:
            emu = loaded.moment and loaded.units[loaded.moment] == "emu"
            moments = pd.to_numeric(frame[loaded.moment], errors="coerce").abs() if emu else None
            peak = float(moments.max()) if moments is not None and moments.notna().any() else None
            loaded.mass_mg, loaded.mass_text, noteworthy = sample_mass_mg(value, peak)
            if noteworthy:
                loaded.notes.append(loaded.mass_text)
        loaded.mass_problem = None
    else:
        if loaded.mass_problem:
            loaded.notes.append(loaded.mass_problem.rstrip("."))
        found = _mass_column(frame, _files_text([i["name"] for i in infos])) if loaded.instrument else None
        if found and found[3]:  # the column's masses differ: said, and raised if no mass is given
            loaded.mass_problem = loaded.mass_problem or found[3]
            loaded.notes.append(found[3].rstrip("."))
        elif found:
            column, value, unit, _ = found
            loaded.mass_mg, loaded.mass_source = value * _MASS_UNITS[unit], f"'{column}' column"
            loaded.mass_problem = None
            loaded.mass_text = f"'{column}' column: {value:g} {unit}" + (
                "" if unit == "mg" else f" = {loaded.mass_mg:g} mg")
            loaded.notes.append(f"sample mass {loaded.mass_mg:g} mg from the data column '{column}' (the [Header] "
                                "gives no SAMPLE_MASS)")
    if loaded.instrument and loaded.moment:
        empty = frame[loaded.moment].isna()
        loaded.empty_moments = int(empty.sum())
        if loaded.empty_moments:
            lines = frame.attrs.get(dataset._LINES_ATTR)
            loaded.frame = frame.loc[~empty].reset_index(drop=True)
            if lines is not None and len(lines) == len(frame):
                loaded.frame.attrs[dataset._LINES_ATTR] = np.asarray(lines)[~empty.to_numpy()]
            loaded.notes.append(f"dropped {loaded.empty_moments} rows with an empty '{loaded.moment}' (the fit failed)")
    if loaded.comment_rows:
        loaded.notes.append(f"skipped {loaded.comment_rows} comment rows")
    if loaded.instrument and loaded.moment and len(loaded.frame) == 0:
        raise DataError(f"every row of the data has an empty '{loaded.moment}'; the file holds no measured moment.")
    return loaded


# --------------------------------------------------------------------------- roles, sweeps, training data


@dataclass(frozen=True)
class Roles:
    """Which column is the temperature and which the field, independently of X1/X2 (None: not magnetic)."""

    temperature: str | None = None
    field: str | None = None

    def protocol(self, x2: str) -> str:
        """'M(T)' (fixed fields, temperature swept), 'M(H)' (isotherms) or '' when the roles are not set."""
        if self.field and x2 == self.field:
            return "M(T)"
        if self.temperature and x2 == self.temperature:
            return "M(H)"
        return ""


def guess_roles(loaded: Loaded) -> Roles:
    """Temperature and field columns from the units in their headers."""
    return Roles(loaded.column_of(TEMPERATURE_UNITS, "temp"), loaded.column_of(FIELD_UNITS, "field"))


def _tolerance(value: float) -> float:
    try:
        return setpoints.check_tolerance(value)
    except setpoints.SetPointError as err:
        raise DataError(str(err)) from None


def guess_columns(loaded: Loaded, tolerance: float = setpoints.DEFAULT_TOLERANCE) -> tuple[str, str, str]:
    """Default (X1, X2, Y): for a magnetometer table, the temperature and field with the stepped one as X2
    and the moment as Y; otherwise :func:`dataset.guess_columns` (X2: the column with the fewest set points)."""
    roles = guess_roles(loaded)
    y = loaded.moment
    if roles.temperature and roles.field and y:
        try:
            x2 = stepped_axis(loaded.frame, roles.temperature, roles.field, tolerance)
        except DataError:
            x2 = roles.field
        return (roles.field if x2 == roles.temperature else roles.temperature), x2, y
    return dataset.guess_columns(loaded.frame)


def stepped_axis(frame: pd.DataFrame, a: str, b: str, tolerance: float = setpoints.DEFAULT_TOLERANCE,
                 *, label: str = "the data") -> str:
    """Of two columns, the stepped one (held at set points while the other sweeps): X2.

    From the order of the rows: between consecutive rows the swept axis moves further, relative to its range,
    than the stepped one. Each source file is looked at on its own, so that a file mixing fixed-field sweeps and
    isotherms (more than a tenth of its steps sweeping the other axis) is named, and so are files that disagree.
    """
    _tolerance(tolerance)
    parts = frame.groupby(SOURCE_COLUMN, sort=False) if SOURCE_COLUMN in frame.columns else [(None, frame)]
    chosen: dict[str, str] = {}
    for source, part in parts:
        where = f"file '{source}'" if source is not None else label
        va, vb = (pd.to_numeric(part[c], errors="coerce").to_numpy(dtype=float) for c in (a, b))
        ok = np.isfinite(va) & np.isfinite(vb)
        va, vb = _snapped(va[ok], tolerance), _snapped(vb[ok], tolerance)
        if va.size < 3:
            continue
        span_a, span_b = (np.ptp(v) or 1.0 for v in (va, vb))
        da, db = np.abs(np.diff(va)) / span_a, np.abs(np.diff(vb)) / span_b
        moving = (da > 0) | (db > 0)
        sweeps_a = int(np.count_nonzero((da > db) & moving))
        sweeps_b = int(np.count_nonzero((db > da) & moving))
        if min(sweeps_a, sweeps_b) > max(3, 0.1 * (sweeps_a + sweeps_b)):
            raise DataError(
                f"{where} mixes both protocols: {sweeps_a} steps sweep '{a}' and {sweeps_b} sweep '{b}'; "
                "split fixed-field sweeps and isotherms into separate files and projects."
            )
        chosen[where] = b if sweeps_a >= sweeps_b else a
    if len(set(chosen.values())) > 1:
        raise DataError(
            f"the files mix both protocols: some step '{a}' and others step '{b}'; "
            "load fixed-field sweeps and isotherms as separate projects."
        )
    if not chosen:
        raise DataError(f"{label} has fewer than 3 rows with both '{a}' and '{b}'; nothing to tell the stepped axis by.")
    return next(iter(chosen.values()))


def _snapped(values: np.ndarray, tolerance: float) -> np.ndarray:
    """Readings replaced by their set points when they group into set points, else unchanged: read-back jitter
    of a held temperature (±0.05 K between isotherms 1 K apart) is then no step, which beside fine field steps
    (0.005 of the range) looked like a temperature sweep. Grouped at a tolerance of 0.5 at least: this only tells
    which axis steps; :func:`prepare` still holds the set points to the user's tolerance, and its sentence says
    so when they do not separate."""
    if values.size < 3:
        return values
    try:
        sp = setpoints.group(values, max(tolerance, 0.5))
    except setpoints.SetPointError:
        return values
    return sp.values[sp.labels]


def sweep_directions(frame: pd.DataFrame, x1: str, labels: np.ndarray, *, up: str = "warming",
                     down: str = "cooling") -> np.ndarray:
    """Each row's branch from the order of the rows: `up` where X1 rises along its curve, `down` where it falls.

    A curve is the rows of one set point in one source file, in file order; a row takes the direction of the
    step that reaches it (the first row that of the step leaving it). A step shorter than SWEEP_JITTER of the
    curve's long steps (its 90th percentile) is read-back jitter, not a sweep: a repeated reading at one
    temperature, or the reading at a turnaround taken twice. The row it reaches takes the direction of the next
    long step, the sweep it begins (at the end of a curve, the last one's), so neither splits a sweep in two.
    """
    x = pd.to_numeric(frame[x1], errors="coerce").to_numpy(dtype=float)
    out = np.empty(len(frame), dtype=object)
    for idx in _curves(frame, labels):
        step = np.diff(x[idx])
        if not step.size:
            out[idx] = up
            continue
        size = np.abs(np.nan_to_num(step))
        sign = pd.Series(np.where(size > SWEEP_JITTER * np.quantile(size, 0.9), np.sign(step), np.nan))
        sign = sign.bfill().ffill().fillna(1.0).to_numpy()
        out[idx] = np.where(np.concatenate([sign[:1], sign]) < 0, down, up)
    return out


def _curves(frame: pd.DataFrame, labels: np.ndarray) -> list[np.ndarray]:
    """The row positions of each curve, in file order: the rows of one set point in one source file."""
    keys = pd.Series(labels.astype(str))
    if SOURCE_COLUMN in frame.columns:
        keys = keys + "\0" + frame[SOURCE_COLUMN].astype(str).to_numpy()
    return list(keys.groupby(keys.to_numpy(), sort=False).indices.values())


def first_sweep(frame: pd.DataFrame, labels: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Which rows belong to their curve's first sweep: from its first row up to the first turnaround, where its
    branch in `directions` (:func:`sweep_directions`, jitter already read as such) changes. Of a hysteresis loop
    0 → +Hmax → −Hmax → +Hmax, the virgin curve, which --sweep up cannot tell from the return from −Hmax; of
    ZFC warming, FC cooling, FC warming, the ZFC warming. A curve that begins with a sweep down keeps it."""
    keep = np.zeros(len(frame), dtype=bool)
    for idx in _curves(frame, labels):
        turns = np.flatnonzero(directions[idx] != directions[idx[0]])
        keep[idx[:turns[0] if turns.size else idx.size]] = True
    return keep


_REMANENT_T = 0.01  # a negative field reading down to this (10 mT), or 1 % of the top field, is a remanent "zero"


def _refuse_negative_fields(sub: pd.DataFrame, field: str, curve: str | None, unit: str | None,
                            loop: bool = False) -> None:
    """One sentence when the kept rows reach clearly negative fields: |ΔS_M| is integrated from the lowest field,
    so a hysteresis loop's negative half or a sweep to −5 T would be taken as the start of the field change
    (|ΔS_M| from −5 to −4 T reported as that of 0 → 1 T). A remanent "zero" (−15 Oe) passes. `loop`: the
    rows came from a loop (both branches along the field), whose first sweep --sweep first keeps."""
    h = pd.to_numeric(sub[field], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(h)
    if not finite.any():
        return
    remanent = _REMANENT_T / float(entropy.to_tesla(1.0, unit)) if unit in entropy.H_UNITS else 0.0  # file units
    limit = max(0.01 * float(np.max(np.abs(h[finite]))), remanent)
    below = np.flatnonzero(finite & (h < -limit))
    if not below.size:
        return
    row = int(below[np.argmin(h[below])])
    of = f" (the isotherm at {float(sub[curve].iloc[row]):g} K)" if curve else ""
    err = DataError(
        f"the field '{field}' reaches {h[row]:g}{' ' + unit if unit else ''} at line {dataset._file_lines(sub)[row]}"
        f"{of}, but |ΔS_M| is "
        "integrated from the lowest field up, so negative fields would be taken as the start of the field change; "
        + ("of this hysteresis loop, train on each isotherm's first sweep up with --sweep first (on the Data page: "
           "the sweep branch 'first')." if loop else
           "keep only the rows at zero field and above (of a hysteresis loop, its first sweep up; of a sweep to "
           "negative fields, negate the field and the moment) and load the file again.")
    )
    err.sweep_first = loop  # the remedy is the sweep branch 'first' (the Data page offers it beside the error)
    raise err


def prepare(
    loaded: Loaded,
    x1: str,
    x2: str,
    y: str,
    *,
    tolerance: float = setpoints.DEFAULT_TOLERANCE,
    sweep: str | None = None,
    drop_invalid: bool = False,
    x2_values: Sequence[float] | None = None,
    roles: Roles | None = None,
) -> tuple[TrainingData, dict[str, Any]]:
    """Validated training data from a loaded table, and the facts to store and show with it.

    `sweep`: the branch to keep ('warming'/'cooling' for temperature sweeps, 'up'/'down' for field sweeps,
    'first' for each curve's first sweep (:func:`first_sweep`), 'all' to keep both explicitly); None takes the
    branch with more rows. The facts: sweep branches and their row counts, the chosen branch, set points,
    tolerance, roles, sources, units, mass; 'notes' says when the file has both branches, 'data_notes' anything
    else worth saying about the data (:func:`_few_field_points`; 'first' on curves that never turn kept every row).
    """
    frame = loaded.frame
    for role, column in (("X1", x1), ("X2", x2), ("Y", y)):
        if column not in frame.columns:
            raise DataError(f"the {role} column '{column}' is not in the file; available columns: "
                            + ", ".join(repr(str(c)) for c in frame.columns) + ".")
    tolerance = _tolerance(tolerance)
    roles = roles or guess_roles(loaded)
    x2_raw = pd.to_numeric(frame[x2], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(x2_raw)
    if not finite.any():  # name the first cell that is no number, by its line, as validate would
        dataset._to_float(frame, x2, "X2", dataset._file_lines(frame))
        raise DataError(f"the X2 column '{x2}' holds no finite number; choose a column of readings.")
    try:
        sp = setpoints.group(x2_raw[finite], tolerance, column=x2)
    except setpoints.SetPointError as err:
        raise DataError(str(err)) from None
    labels = np.full(len(frame), -1)
    labels[finite] = sp.labels
    up, down = ("warming", "cooling") if x1 == roles.temperature else ("up", "down")
    directions = sweep_directions(frame, x1, labels, up=up, down=down)
    counts = {b: int((directions == b).sum()) for b in (up, down)}
    facts: dict[str, Any] = {"branches": counts, "set_point_tol": float(tolerance)}
    minor = min(counts.values())
    both = minor >= max(3, 0.05 * len(frame))
    if sweep not in (None, "all", "first", up, down):
        raise DataError(f"--sweep '{sweep}' is not a branch of this data; choose {up}, {down}, first or all.")
    if sweep is None:
        sweep = max(counts, key=counts.get) if both else "all"
    keep = (np.ones(len(frame), dtype=bool) if sweep == "all" else
            first_sweep(frame, labels, directions) if sweep == "first" else directions == sweep)
    facts["sweep"] = sweep if both or sweep != "all" else max(counts, key=counts.get)
    if both:
        facts["notes"] = [f"the file has both branches ({counts[up]} {up}, {counts[down]} {down} rows); "
                          f"training on {sweep}" + ("" if sweep == "all" else f" ({int(keep.sum())} rows)")]
    extra = [c for c in (loaded.stderr, SOURCE_COLUMN) if c and c in frame.columns and c not in (x1, x2, y)]
    sub = frame.loc[keep, list(dict.fromkeys([x1, x2, y, *extra]))].reset_index(drop=True)  # validate names repeats
    lines = frame.attrs.get(dataset._LINES_ATTR)
    if lines is not None and len(lines) == len(frame):
        sub.attrs[dataset._LINES_ATTR] = np.asarray(lines)[keep]
    moment = y == loaded.moment or loaded.units.get(y) in MOMENT_UNITS  # integrated into |ΔS_M|; other Y keep ±H
    if roles.field in (x1, x2) and moment:
        _refuse_negative_fields(sub, roles.field, x2 if roles.field == x1 else None, loaded.units.get(roles.field),
                                loop=both and sweep != "first" and roles.field == x1)
    if sweep != "all" and both:
        sub[SWEEP_COLUMN] = directions[keep]  # each row's branch (of 'first', up or down by where its curve began)
        extra.append(SWEEP_COLUMN)
    data = dataset.validate(sub, x1, x2, y, x2_values=x2_values, drop_invalid=drop_invalid,
                            set_point_tol=tolerance, extra=extra)
    facts["data_notes"] = _few_field_points(data, roles)
    if sweep == "first" and keep.all():  # no curve turns: 'first' chose nothing, which the user should know
        facts["data_notes"].insert(0, "every curve is already a single sweep (no turnaround), so 'first' kept all rows")
    facts.update({
        "temperature": roles.temperature, "field": roles.field, "protocol": roles.protocol(x2),
        "sources": loaded.sources, "mass_mg": loaded.mass_mg, "stderr": loaded.stderr,
        "set_points": [float(v) for v in data.x2_values],
    })
    return data, facts


def _few_field_points(data: TrainingData, roles: Roles) -> list[str]:
    """A note when curves along the field (isotherms, field sweeps) have at most FEW_FIELD_POINTS points, or
    temperature sweeps were measured at that few fields: they load, but M(H) between those points, which |ΔS_M|
    integrates at each temperature, is then the interpolation's, not the data's."""
    tail = ": M(H) between them, which |ΔS_M| integrates, is the interpolation's; measure more fields where you can"
    if roles.field == data.x2_name and len(data.x2_values) <= FEW_FIELD_POINTS:
        return [f"the data has only {len(data.x2_values)} fields{tail}"]
    if roles.field != data.x1_name:
        return []
    counts = np.bincount(data.set_points.labels)
    few = counts <= FEW_FIELD_POINTS
    if not few.any():
        return []
    kind = "isotherms" if roles.temperature == data.x2_name else "curves"
    if few.all() and counts.min() == counts.max():
        which = f"the {counts.size} {kind} have only {counts[0]} field points each"
    else:
        which = f"{int(few.sum())} of the {counts.size} {kind} have only {FEW_FIELD_POINTS} field points or fewer"
    return [which + tail]


def project_units(
    loaded: Loaded,
    data: TrainingData,
    facts: Mapping[str, Any],
    *,
    x1_unit: str = "",
    x2_unit: str = "",
    y_unit: str = "",
    mass_mg: float | None = None,
    molar_mass_g: float | None = None,
) -> dict[str, Any]:
    """The units, mass, roles, set-point tolerance, sweep branch and provenance stored with a project.

    Explicit arguments win over the headers and the file's SAMPLE_MASS. An instrument file whose moment is in
    emu with no mass from the file or the user is rejected here, before anything is stored.
    """
    for name, value in (("--mass-mg", mass_mg), ("--molar-mass-g", molar_mass_g)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise DataError(f"{name} must be a positive number; got {value:g}")
    units: dict[str, Any] = {
        "x1": canonical_unit(x1_unit) if x1_unit else unit_in_name(data.x1_name),
        "x2": canonical_unit(x2_unit) if x2_unit else unit_in_name(data.x2_name),
        "y": canonical_unit(y_unit) if y_unit else unit_in_name(data.y_name),
    }
    field_col, temp_col = facts.get("field"), facts.get("temperature")
    by_column = {data.x1_name: units["x1"], data.x2_name: units["x2"]}
    if field_col in by_column and by_column[field_col] in FIELD_UNITS:
        units["h_unit"] = by_column[field_col]
    if units["y"] in MOMENT_UNITS:
        units["m_unit"] = units["y"]
    mass = mass_mg if mass_mg is not None else loaded.mass_mg
    if mass is not None:
        units["mass_mg"] = float(mass)
        from_file = mass_mg is None or (loaded.mass_mg is not None and np.isclose(mass_mg, loaded.mass_mg))
        units["mass_from"] = f"file's {loaded.mass_source}" if from_file else "user"
    if molar_mass_g is not None:
        units["molar_mass_g"] = float(molar_mass_g)
    if loaded.instrument and units.get("m_unit") == "emu" and mass is None:
        if loaded.mass_problem:
            raise DataError(loaded.mass_problem)
        raise DataError(
            f"the moment '{data.y_name}' is in emu but neither the file (INFO,<mass>,SAMPLE_MASS) nor the "
            "options give the sample mass; give it with --mass-mg (Data page: 'Sample mass')."
        )
    if temp_col in (data.x1_name, data.x2_name) and field_col in (data.x1_name, data.x2_name):
        units.update({"temperature": "x1" if temp_col == data.x1_name else "x2",
                      "field": "x1" if field_col == data.x1_name else "x2", "protocol": facts.get("protocol", "")})
    units.update({"set_point_tol": float(data.set_point_tol), "set_points": [float(v) for v in data.x2_values],
                  "sweep": facts.get("sweep"), "sources": list(loaded.sources)})
    if loaded.stderr and loaded.stderr in data.extra_names:
        units["stderr"] = loaded.stderr
    return units


def describe_sources(units: Mapping[str, Any]) -> list[str]:
    """One line per source file: name, size and SHA-256 (for status, the Projects page and export headers)."""
    return [f"{s['name']} ({s['size']:,} bytes, sha256 {s['sha256']})" for s in units.get("sources") or []]
