"""The malformed-CSV corpus in tests/bad_csv and what each file must produce.

Shared by the dataset, CLI and GUI tests. Each case is
``(filename, x1, x2, y, expected_substring)``:

- x1/x2/y are the columns a user would choose, or None where `read_table` already
  rejects the file (the error comes before any column choice);
- expected_substring must appear in the `DataError` message, or is None for a file
  that must be accepted (read and validated into at least 20 rows).

The files are small and byte-exact (tests/bad_csv/.gitattributes turns off
end-of-line conversion so CRLF, BOM and latin-1 bytes survive a checkout).
"""

from __future__ import annotations

from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent / "bad_csv"

T, H, M = "T (K)", "H (Oe)", "moment (emu)"

CASES: list[tuple[str, str | None, str | None, str | None, str | None]] = [
    # --- rejected by read_table
    ("empty.csv", None, None, None, "is empty"),
    ("header_only.csv", None, None, None, "but no data rows"),
    ("binary_garbage.csv", None, None, None, "is binary, not CSV text: it has a NUL byte at byte offset 125 (line 2)"),
    ("latin1_micro.csv", None, None, None, "is not UTF-8 text: byte 0xB5 at byte offset 21 (line 1)"),
    ("excel_workbook.csv", None, None, None, "Excel workbook"),
    ("html_page.csv", None, None, None, "HTML"),
    ("json_data.csv", None, None, None, "JSON"),
    ("no_header.csv", None, None, None, "the first line must name the columns"),
    ("duplicate_columns.csv", None, None, None, "'T (K)' appears twice"),
    ("empty_column_name.csv", None, None, None, "column 2 in line 1 has no name"),
    ("ragged_extra_field.csv", None, None, None, "line 6 has 4 fields but the header (line 1) has 3 columns"),
    ("ragged_missing_field.csv", None, None, None, "line 9 has 2 fields but the header (line 1) has 3 columns"),
    # --- read fine, rejected by validate
    ("nan_cells.csv", T, H, M, "column 'moment (emu)' has 2 empty or NaN cells: rows 5, 12 (lines 6, 13)"),
    ("inf_values.csv", T, H, M, "column 'moment (emu)' has 2 infinite values: rows 3, 21 (lines 4, 22)"),
    ("huge_values.csv", T, H, M, "too large for training (|value| > 1e+30): row 9 (line 10)"),
    ("string_column.csv", T, H, "sample", "column 'sample' row 1 (line 2): 'ErCo2' is not a number"),
    ("string_in_numeric.csv", T, H, M, "column 'moment (emu)' row 7 (line 8): 'ERR' is not a number"),
    ("blank_lines_and_text.csv", T, H, M, "column 'moment (emu)' row 10 (line 13): 'ERR' is not a number"),
    ("duplicated_rows.csv", T, H, M, "rows 5 and 6 (lines 6 and 7) both have T (K)=20, H (Oe)=100"),
    ("single_field.csv", T, H, M, "only one distinct value, 1000"),
    ("too_few_rows.csv", T, H, M, "only 12 rows; at least 20"),
    ("constant_y.csv", T, H, M, "'moment (emu)' is constant"),
    ("mass_normalised.csv", T, H, M, "the Y column 'moment (emu)' is not in the file; available columns:"),
    ("crlf.csv", T, T, M, "X1 and X2 are both column 'T (K)'"),
    # --- accepted
    ("semicolon_decimal_comma.csv", T, H, M, None),
    ("tab_delimited.tsv", T, H, M, None),
    ("bom.csv", T, H, M, None),
    ("utf16_excel_unicode.csv", T, H, M, None),
    ("space_delimited.dat", "T_K", "H_Oe", "moment_emu", None),
    ("crlf.csv", T, H, M, None),
    ("trailing_delimiter.csv", T, H, M, None),
    ("quoted_header.csv", T, H, "moment (emu, raw)", None),
    ("scientific_notation.csv", T, H, M, None),
    ("whitespace_padded.csv", T, H, M, None),
    ("mass_normalised.csv", T, H, "M (emu/g)", None),
    ("string_column.csv", T, H, M, None),
]
