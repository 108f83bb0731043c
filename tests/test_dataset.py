"""Unit tests for mat_interp_core.dataset: every input rule, with the message content checked."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest

from bad_csv_cases import CASES, CORPUS_DIR
from mat_interp_core.dataset import (
    DataError,
    TrainingData,
    guess_columns,
    make_grid,
    parse_axis,
    parse_values,
    read_table,
    validate,
    validate_project_name,
)

T, H, M = "T (K)", "H (Oe)", "moment (emu)"


def _csv(n_t: int = 8, fields=(100.0, 1000.0, 10000.0), sep: str = ",", header=(T, H, M)) -> str:
    """A clean magnetometer-like table: n_t temperatures at each field."""
    lines = [sep.join(header)]
    for h in fields:
        for i in range(n_t):
            t = 10.0 + 2.5 * i
            lines.append(sep.join(str(v) for v in (t, h, round(0.07 / (1 + t / 20) + h * 1e-7, 8))))
    return "\n".join(lines) + "\n"


def _frame(n_t: int = 8, fields=(100.0, 1000.0, 10000.0)) -> pd.DataFrame:
    return read_table(_csv(n_t, fields).encode())


def _err(func, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        func(*args, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------- read_table: sources


def test_read_path_bytes_and_filelike_agree(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(_csv())
    a = read_table(path)
    b = read_table(str(path))
    c = read_table(path.read_bytes())
    d = read_table(io.BytesIO(path.read_bytes()))
    for other in (b, c, d):
        pd.testing.assert_frame_equal(a, other)
    assert list(a.columns) == [T, H, M]
    assert len(a) == 24
    assert a[T].dtype == np.float64


class _Upload(io.BytesIO):
    """Mimics Streamlit's UploadedFile: a BytesIO with .name and .size."""

    def __init__(self, data: bytes, name: str, size: int | None = None):
        super().__init__(data)
        self.name = name
        self.size = len(data) if size is None else size


def test_read_uploaded_file_uses_its_name():
    msg = _err(read_table, _Upload(b"", "upload.csv"))
    assert "file 'upload.csv' is empty" in msg


def test_read_explicit_name_in_messages(tmp_path):
    assert "file 'my data' is empty" in _err(read_table, b"", name="my data")
    assert _err(read_table, b"").startswith("the file is empty")
    path = tmp_path / "run7.csv"
    path.write_bytes(b"")
    assert "file 'run7.csv'" in _err(read_table, path)


def test_read_uploaded_file_rejected_by_size_before_reading():
    class Huge(_Upload):
        def getvalue(self):  # pragma: no cover - must not be called
            raise AssertionError("read before the size check")

    msg = _err(read_table, Huge(b"x", "big.csv", size=300 * 1024 * 1024), max_mb=200)
    assert "300.0 MB" in msg and "200 MB" in msg and "MAT_INTERP_MAX_UPLOAD_MB" in msg


def test_read_stream_without_size_reads_at_most_the_limit():
    class Stream:
        def __init__(self):
            self.requested = None

        def read(self, n=-1):
            self.requested = n
            return b"x" * n

    stream = Stream()
    msg = _err(read_table, stream, max_mb=1)
    assert stream.requested == 1024 * 1024 + 1
    assert "more than 1.0 MB" in msg and "MAT_INTERP_MAX_UPLOAD_MB" in msg


def test_read_text_stream_is_accepted():
    df = read_table(io.StringIO(_csv()))
    assert list(df.columns) == [T, H, M]


def test_read_bytes_over_limit():
    msg = _err(read_table, b"a" * (2 * 1024 * 1024), max_mb=1)
    assert "2.0 MB" in msg and "1 MB" in msg and "MAT_INTERP_MAX_UPLOAD_MB" in msg


def test_read_path_size_checked_before_reading(tmp_path):
    path = tmp_path / "sparse.csv"
    with open(path, "wb") as f:
        f.truncate(8 * 1024**3)  # sparse: 8 GB that nobody could read in a unit test
    start = time.perf_counter()
    msg = _err(read_table, path, max_mb=200)
    assert time.perf_counter() - start < 1.0
    assert "8192.0 MB" in msg and "limit of 200 MB" in msg and "MAT_INTERP_MAX_UPLOAD_MB" in msg


def test_read_missing_path_and_directory(tmp_path):
    assert "does not exist" in _err(read_table, tmp_path / "nope.csv")
    assert "not a regular file" in _err(read_table, tmp_path)


def test_read_csv_text_instead_of_path():
    assert "pass the content as bytes" in _err(read_table, "a,b,c\n1,2,3\n")


def test_read_wrong_type():
    with pytest.raises(TypeError, match="path, bytes or a binary file"):
        read_table(12345)


# --------------------------------------------------------------------------- read_table: encodings and formats


def test_read_bom_and_crlf_and_cr():
    plain = read_table(_csv().encode())
    for variant in (
        b"\xef\xbb\xbf" + _csv().encode(),
        _csv().replace("\n", "\r\n").encode(),
        _csv().replace("\n", "\r").encode(),
        b"\xef\xbb\xbf" + _csv().replace("\n", "\r\n").encode(),
    ):
        pd.testing.assert_frame_equal(read_table(variant), plain)


def test_read_semicolon_with_decimal_comma():
    df = read_table(b"T (K);H (Oe);moment (emu)\n1,5;100;2,25\n3;100,5;-1,5e-3\n")
    assert df.to_numpy().tolist() == [[1.5, 100.0, 2.25], [3.0, 100.5, -1.5e-3]]


def test_read_semicolon_with_decimal_point():
    df = read_table(b"T (K);H (Oe);moment (emu)\n1.5;100;2.25\n")
    assert df.to_numpy().tolist() == [[1.5, 100.0, 2.25]]


def test_read_tab_delimited_and_tab_with_decimal_comma():
    assert read_table(_csv(sep="\t").encode()).equals(read_table(_csv().encode()))
    df = read_table("T (K)\tH (Oe)\tmoment (emu)\n1,5\t100\t2,25\n".encode())
    assert df.to_numpy().tolist() == [[1.5, 100.0, 2.25]]


def test_read_comma_file_with_semicolon_in_a_name():
    df = read_table(b"T (K),H (Oe),moment; raw (emu)\n1,2,3\n4,5,6\n")
    assert list(df.columns) == [T, H, "moment; raw (emu)"]


def test_read_strips_column_names_and_cells():
    df = read_table(b"  T (K) ,H (Oe)\t, moment (emu)  \n 1.5 , 2 ,3\n")
    assert list(df.columns) == [T, H, M]
    assert df.to_numpy().tolist() == [[1.5, 2.0, 3.0]]


def test_read_quoted_names_with_delimiters():
    df = read_table(b'"T (K)","H, applied (Oe)","moment (emu)"\n1,2,3\n"4",5,6\n')
    assert list(df.columns) == [T, "H, applied (Oe)", M]
    assert df.iloc[1, 0] == 4.0


def test_read_trailing_delimiter_on_every_line_is_ignored():
    df = read_table(b"T (K),H (Oe),moment (emu),\n1,2,3,\n4,5,6,\n")
    assert list(df.columns) == [T, H, M]
    assert df.shape == (2, 3)


def test_read_trailing_nameless_column_with_data_is_rejected():
    msg = _err(read_table, b"T (K),H (Oe),moment (emu),\n1,2,3,4\n")
    assert "column 4 in line 1 has no name" in msg


def test_read_keeps_strings_raw():
    df = read_table(b"T (K),sample,moment (emu)\n1,ErCo2,3\n2,ErCo2,4\n")
    assert df["sample"].tolist() == ["ErCo2", "ErCo2"]


def test_read_empty_and_whitespace_only():
    assert "is empty" in _err(read_table, b"")
    assert "is empty" in _err(read_table, b"  \n\r\n\t\n")


def test_read_binary_names_offset_and_line():
    msg = _err(read_table, b"T (K),H (Oe),M\n1,2,3\n4,\x00,6\n")
    assert "binary" in msg and "byte offset 23" in msg and "(line 3)" in msg


def test_read_latin1_names_offset_and_line():
    data = "T (K),H (Oe),moment (emu)\n1,2,3\n4,5,6 µ\n".encode("latin-1")
    offset = data.index("µ".encode("latin-1"))
    msg = _err(read_table, data)
    assert "not UTF-8" in msg and "0xB5" in msg and f"byte offset {offset} (line 3)" in msg


def test_read_latin1_offset_counts_the_bom():
    data = b"\xef\xbb\xbfT,H,M\xe9\n1,2,3\n"
    assert "byte offset 8 (line 1)" in _err(read_table, data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xfe\x00\x00T\x00\x00\x00", "UTF-32"),
        (b"PK\x03\x04rest-of-zip", "Excel workbook (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "old Excel workbook (.xls)"),
        (b"<!DOCTYPE html>\n<html><body>404</body></html>\n", "HTML"),
        (b"  <?xml version='1.0'?><a/>\n", "HTML or XML"),
        (b'{"T (K)": [1, 2], "H (Oe)": [3, 4]}\n', "JSON"),
        (b'[{"T": 1, "H": 2, "M": 3}]', "JSON"),
    ],
)
def test_read_recognises_other_formats(data, expected):
    assert expected in _err(read_table, data)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_read_utf16_with_a_bom(codec):
    # Windows 'Unicode text' and Origin exports were refused; the BOM says which byte order
    text = _csv(sep="\t").replace("\n", "\r\n").replace("moment", "moment µ")
    bom = b"\xff\xfe" if codec.endswith("le") else b"\xfe\xff"
    df = read_table(bom + text.encode(codec))
    assert list(df.columns) == [T, H, "moment µ (emu)"] and len(df) == 24
    assert df.to_numpy().tolist() == read_table(_csv().encode()).to_numpy().tolist()
    msg = _err(read_table, bom + text.encode(codec) + b"\x00")  # an odd byte: cut in a character
    assert "starts as UTF-16 text (its byte-order mark) but byte offset" in msg and "(line 26) is not UTF-16" in msg


def test_read_header_only():
    assert "has a header (line 1) but no data rows" in _err(read_table, b"T (K),H (Oe),moment (emu)\n\n\n")


def test_read_missing_header():
    msg = _err(read_table, b"10.0,100,0.0757\n12.5,100,0.0750\n")
    assert "the first line must name the columns" in msg and "line 1" in msg
    msg = _err(read_table, b"10,5;100;0,0757\n12,5;100;0,0750\n")
    assert "the first line must name the columns" in msg


def test_read_duplicate_names_after_stripping():
    msg = _err(read_table, b"T (K),H (Oe), T (K)\n1,2,3\n")
    assert "'T (K)' appears twice" in msg and "columns 1 and 3" in msg


def test_read_empty_name():
    assert "column 2 in line 1 has no name" in _err(read_table, b"T (K), ,moment (emu)\n1,2,3\n")


def test_read_ragged_rows_name_the_lines():
    msg = _err(read_table, b"T,H,M\n1,2,3\n1,2,3,4\n1,2,3\n1,2\n")
    assert "line 3 has 4 fields but the header (line 1) has 3 columns" in msg and "also line 5" in msg
    msg = _err(read_table, b"T,H,M\n1,2,3\n1,2\n")
    assert "line 3 has 2 fields" in msg


def test_read_ragged_rows_in_quoted_file():
    msg = _err(read_table, b'"T","H","M"\n1,2,3\n"a,b",2\n')
    assert "line 3 has 2 fields" in msg


def test_read_unclosed_quote_is_explained():
    msg = _err(read_table, b'T,H,M\n1,2,3\n"4,5,6\n7,8,9\n')
    assert "the quotes in line 3 are malformed" in msg and 'opening quote (") is closed' in msg
    msg = _err(read_table, b'T,H,M\n1,2,3\n"4"x,5,6\n')
    assert "the quotes in line 3 are malformed" in msg


def test_read_ragged_line_numbers_count_blank_lines():
    msg = _err(read_table, b"T,H,M\n\n1,2,3\n\n1,2\n")
    assert "line 5 has 2 fields" in msg


def test_read_single_column_explains_separators():
    msg = _err(read_table, b"T_H_M\n1\n2\n")
    assert "single column" in msg and "',', ';' or tab" in msg


def test_read_whitespace_separated_columns():
    # numpy.savetxt's default (one space, a '# ' header) and lab programs' aligned columns were refused
    plain = read_table(_csv().encode())
    rows = plain.to_numpy()
    buf = io.BytesIO()
    np.savetxt(buf, rows, header="T_K H_Oe M_emu")
    df = read_table(buf.getvalue())
    assert list(df.columns) == ["T_K", "H_Oe", "M_emu"] and np.allclose(df.to_numpy(), rows, rtol=1e-15)
    aligned = "".join(f"  {t:8.2f}   {h:10.1f}\t{m:.6e}  \n" for t, h, m in rows)
    for header in ("  T_K      H_Oe        M_emu", "Temperature (K)   Field (Oe)   moment (emu)",
                   '"Temperature (K)" "Field (Oe)" "moment (emu)"'):  # two spaces or quotes keep names apart
        df = read_table((header + "\n\n" + aligned).encode())
        assert df.shape == (24, 3) and np.allclose(df.to_numpy(), rows, rtol=1e-6), header
    assert read_table(b"T (K)  H (Oe)  M (emu)\n1 2,5 3\n4 5,5 6\n")["H (Oe)"].tolist() == [2.5, 5.5]  # decimal commas
    msg = _err(read_table, ("Temperature (K) Field (Oe) moment (emu)\n" + aligned).encode())
    assert msg == ("the file: the columns are separated by spaces, so the names in line 1 ('Temperature (K) Field "
                   "(Oe) moment (emu)') cannot be told apart (6 words for 3 columns); separate the columns with tab or "
                   "',', or put at least two spaces between the names.")
    assert "('T (K) H M') cannot be told apart (4 words" in _err(read_table, b"T (K) H M\n1 2 3\n4 5 6\n")
    assert "('Temperature (K) M') cannot be told apart (3 words" in _err(read_table, b"Temperature (K) M\n1 2 3\n")
    msg = _err(read_table, b"T H M\n1 2 3\n4 5\n1 2 3\n")
    assert "line 3 has 2 fields but the header (line 1) has 3 columns" in msg and "(whitespace-separated)" in msg


def test_read_skips_blank_lines_and_remembers_file_lines():
    df = read_table(b"\nT,H,M\n1,2,3\n\n  \n4,5,6\n\n")
    assert df.to_numpy().tolist() == [[1, 2, 3], [4, 5, 6]]
    msg = _err(validate, read_table(b"T,H,M\n1,2,3\n\n4,x,6\n"), "T", "H", "M", min_rows=1)
    assert "column 'H' row 2 (line 4): 'x' is not a number" in msg


# --------------------------------------------------------------------------- read_table: 10^6 rows


def test_million_rows_size_limit_and_speed(tmp_path):
    n = 1_000_000
    t = np.tile(np.linspace(2.0, 300.0, 10_000), 100)
    h = np.repeat(np.arange(100) * 500.0, 10_000)
    m = np.round(1e-3 * t + 1e-6 * h, 9)
    path = tmp_path / "million.csv"
    pd.DataFrame({T: t, H: h, M: m}).to_csv(path, index=False)
    size_mb = path.stat().st_size / 1024**2

    msg = _err(read_table, path, max_mb=size_mb / 2)
    assert f"{size_mb:.1f} MB" in msg and "MAT_INTERP_MAX_UPLOAD_MB" in msg

    start = time.perf_counter()
    data = validate(read_table(path, max_mb=size_mb + 1), T, H, M)
    elapsed = time.perf_counter() - start
    assert len(data.frame) == n
    assert elapsed < 15.0, f"reading and validating 10^6 rows took {elapsed:.1f} s"


# --------------------------------------------------------------------------- guess_columns


def test_guess_typical_magnetometer_file():
    assert guess_columns(_frame()) == (T, H, M)


def test_guess_when_y_has_more_distinct_values_than_x1():
    # T on a set-point grid repeats at every field; the moment does not.
    assert guess_columns(_frame(n_t=8, fields=(100.0, 1000.0, 10000.0, 20000.0))) == (T, H, M)


def test_guess_ignores_text_columns():
    df = read_table(b"sample,T (K),H (Oe),moment (emu)\n" + b"".join(
        f"ErCo2,{t},{h},{t * h}\n".encode() for h in (1, 2) for t in range(5)
    ))
    assert guess_columns(df) == (T, H, M)


def test_guess_falls_back_to_first_three_columns():
    df = pd.DataFrame({"a": ["x", "y"], "b": ["u", "v"], "c": [1, 2], "d": [3, 4]})
    assert guess_columns(df) == ("a", "b", "c")


def test_guess_needs_three_columns():
    msg = _err(guess_columns, pd.DataFrame({T: [1.0], H: [2.0]}))
    assert "2 columns" in msg and "at least 3" in msg and "'T (K)'" in msg


# --------------------------------------------------------------------------- validate: good data


def test_validate_returns_sorted_float64_frame():
    df = _frame().sample(frac=1.0, random_state=0)
    df["extra"] = "ignored"
    data = validate(df, T, H, M)
    assert list(data.frame.columns) == [T, H, M]
    assert (data.frame.dtypes == np.float64).all()
    assert data.frame.index.equals(pd.RangeIndex(len(data.frame)))
    keys = list(zip(data.frame[H], data.frame[T]))
    assert keys == sorted(keys)
    assert data.n_dropped == 0
    assert (data.x1_name, data.x2_name, data.y_name) == (T, H, M)
    assert data.x2_values.tolist() == [100.0, 1000.0, 10000.0]


def test_validate_converts_numeric_text():
    df = pd.DataFrame({"x": [" 1.5", "2", "3e0"] * 7, "h": ["1", "1", "1", "2", "2", "2", "3"] * 3, "y": range(21)})
    df["x"] = [f"{i}.5" for i in range(21)]
    data = validate(df, "x", "h", "y")
    assert data.frame["x"].dtype == np.float64


def test_training_data_arrays():
    data = validate(_frame(), T, H, M)
    x, y = data.arrays()
    assert x.shape == (24, 2) and y.shape == (24,)
    assert x.dtype == y.dtype == np.float64
    assert np.array_equal(x[:, 0], data.frame[T]) and np.array_equal(x[:, 1], data.frame[H])
    x[0, 0] = -1.0
    assert data.frame[T].iloc[0] != -1.0  # a copy, the frozen data stays intact


def test_training_data_csv_round_trip_is_exact():
    rng = np.random.default_rng(1)
    n = 200
    names = ("T, sample (K)", 'H "applied" (Oe)', "moment (emu)")
    df = pd.DataFrame(
        {
            names[0]: rng.uniform(2, 300, n),
            names[1]: np.repeat([0.0, 1e-7, 5e4, 7.123456789012345e4], n // 4),
            names[2]: rng.normal(size=n) * 10.0 ** rng.integers(-20, 20, n),
        }
    )
    data = validate(df, *names)
    back = TrainingData.from_csv_bytes(data.to_csv_bytes(), *names)
    assert back == data
    assert np.array_equal(back.frame.to_numpy(), data.frame.to_numpy())


def test_training_data_equality_and_hash():
    a = validate(_frame(), T, H, M)
    b = validate(_frame(), T, H, M)
    assert a == b and hash(a) == hash(b)
    assert a != validate(_frame(n_t=9), T, H, M)
    with pytest.raises(AttributeError):
        a.n_dropped = 3  # frozen


def test_from_csv_bytes_rechecks_columns():
    data = validate(_frame(), T, H, M)
    assert "not in the file" in _err(TrainingData.from_csv_bytes, data.to_csv_bytes(), T, H, "M")


# --------------------------------------------------------------------------- validate: errors


def test_validate_missing_column_lists_available():
    msg = _err(validate, _frame(), T, H, "M (emu/g)")
    assert "the Y column 'M (emu/g)' is not in the file" in msg
    assert "'T (K)', 'H (Oe)', 'moment (emu)'" in msg


def test_validate_same_column_twice():
    assert "X1 and Y are both column 'T (K)'" in _err(validate, _frame(), T, H, T)


def test_validate_duplicate_column_labels_in_frame():
    df = pd.DataFrame([[1.0, 2.0, 3.0]], columns=[T, H, T])
    assert "appears more than once" in _err(validate, df, T, H, M)


def test_validate_not_numeric_names_column_row_and_line():
    df = _frame()
    df[H] = df[H].astype(object)
    df.loc[6, H] = "abc"
    msg = _err(validate, df, T, H, M)
    assert "column 'H (Oe)' row 7 (line 8): 'abc' is not a number" in msg


def test_validate_column_of_text_suggests_another_column():
    df = _frame()
    df["sample"] = "ErCo2"
    msg = _err(validate, df, T, H, "sample")
    assert "column 'sample' row 1 (line 2): 'ErCo2' is not a number" in msg
    assert "24 cells" in msg and "choose a numeric column" in msg


def test_validate_boolean_column():
    df = _frame()
    df["flag"] = True
    assert "True/False" in _err(validate, df, T, H, "flag")


def test_validate_nan_cells_listed_and_counted():
    df = _frame(n_t=20)
    df.loc[[1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23], M] = np.nan
    msg = _err(validate, df, T, H, M)
    assert "column 'moment (emu)' has 12 empty or NaN cells" in msg
    assert "rows 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, ..." in msg and "lines 3, 5," in msg
    assert "22" not in msg.split("rows")[1].split("(")[0]  # only the first 10 rows are listed
    assert "--drop-invalid" in msg and "drop invalid rows" in msg


def test_validate_empty_text_cells_are_missing():
    df = _frame().astype(str)
    df.loc[4, T] = "  "
    df.loc[5, T] = "nan"
    msg = _err(validate, df, T, H, M)
    assert "column 'T (K)' has 2 empty or NaN cells: rows 5, 6 (lines 6, 7)" in msg


def test_validate_inf_and_huge_values():
    df = _frame()
    df.loc[2, M] = np.inf
    df.loc[8, T] = -1e300
    msg = _err(validate, df, T, H, M)
    assert "column 'T (K)' has 1 value too large for training (|value| > 1e+30): row 9 (line 10), e.g. -1e+300" in msg
    assert "column 'moment (emu)' has 1 infinite value: row 3 (line 4)" in msg


def test_validate_drop_invalid_counts_dropped_rows():
    df = _frame(n_t=10)
    df.loc[2, M] = np.nan
    df.loc[3, M] = -np.inf
    df.loc[4, T] = 5e31
    data = validate(df, T, H, M, drop_invalid=True)
    assert data.n_dropped == 3
    assert len(data.frame) == 27
    assert np.isfinite(data.frame.to_numpy()).all()


def test_validate_drop_invalid_then_too_few_rows_says_why():
    df = _frame(n_t=7)
    df.loc[[0, 1], M] = np.nan
    msg = _err(validate, df, T, H, M, drop_invalid=True)
    assert "only 19 rows after dropping 2 invalid rows; at least 20" in msg


def test_validate_x2_values_keep_only_requested_rows():
    data = validate(_frame(n_t=10), T, H, M, x2_values=[100.0, 10000.0 * (1 + 1e-10)])
    assert data.x2_values.tolist() == [100.0, 10000.0]
    assert len(data.frame) == 20


def test_validate_x2_values_filter_before_invalid_check():
    df = _frame(n_t=10)
    df.loc[df[H] == 1000.0, M] = np.nan  # a broken field nobody asked for
    data = validate(df, T, H, M, x2_values=[100.0, 10000.0])
    assert len(data.frame) == 20 and data.n_dropped == 0
    df.loc[0, M] = np.nan
    msg = _err(validate, df, T, H, M, x2_values=[100.0, 10000.0])
    assert "has 1 empty or NaN cell: row 1 (line 2)" in msg
    msg = _err(validate, df, T, H, M, x2_values=[100.0, 10000.0], drop_invalid=True)
    assert "only 19 rows after keeping only the requested X2 values and dropping 1 invalid row;" in msg


def test_validate_x2_values_missing_are_listed_with_existing():
    msg = _err(validate, _frame(), T, H, M, x2_values=[100.0, 300.0, 10000.0 * (1 + 1e-6)])
    assert "requested X2 values 300, 10000.01 are not in column 'H (Oe)'" in msg
    assert "the file has 100, 1000, 10000" in msg


def test_validate_x2_values_empty_request():
    assert "no X2 values were requested" in _err(validate, _frame(), T, H, M, x2_values=[])


def test_validate_single_x2_value():
    msg = _err(validate, _frame(n_t=30, fields=(1000.0,)), T, H, M)
    assert "the X2 column 'H (Oe)' has only one distinct value, 1000" in msg


def test_validate_single_x2_value_after_filter():
    msg = _err(validate, _frame(n_t=30), T, H, M, x2_values=[1000.0])
    assert "only one distinct value, 1000 after keeping only the requested X2 values" in msg


def test_validate_min_rows():
    msg = _err(validate, _frame(n_t=6), T, H, M)
    assert "only 18 rows; at least 20 are needed" in msg
    assert len(validate(_frame(n_t=6), T, H, M, min_rows=18).frame) == 18


def test_validate_constant_y():
    df = _frame()
    df[M] = 0.0757
    assert "the Y column 'moment (emu)' is constant (every row is 0.0757)" in _err(validate, df, T, H, M)


def test_validate_duplicate_points_name_rows():
    df = _frame()
    df.loc[10, [T, H]] = df.loc[3, [T, H]].to_numpy()
    df.loc[20, [T, H]] = df.loc[3, [T, H]].to_numpy()
    df.loc[15, [T, H]] = df.loc[0, [T, H]].to_numpy()
    msg = _err(validate, df, T, H, M)
    assert "2 (T (K), H (Oe)) points appear more than once" in msg
    assert "rows 1 and 16 (lines 2 and 17) both have T (K)=10, H (Oe)=100" in msg
    assert "rows 4 and 11 and 21 (lines 5 and 12 and 22) all have T (K)=17.5, H (Oe)=100" in msg


def test_validate_row_numbers_are_positions_not_index_labels():
    df = _frame()
    df.index = df.index * 10 + 1000
    df.loc[df.index[6], M] = np.nan
    assert "row 7 (line 8)" in _err(validate, df, T, H, M)


# --------------------------------------------------------------------------- parse_values / parse_axis


def test_parse_values_good():
    assert parse_values(" 100, 1e3 ,-5.5,+2,.5 ", what="--x2-values") == [100.0, 1000.0, -5.5, 2.0, 0.5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "--x2-values is empty"),
        ("   ", "--x2-values is empty"),
        ("100,abc", "--x2-values: item 2 'abc' is not a number"),
        ("100,,200", "--x2-values: item 2 of '100,,200' is empty"),
        ("100,", "item 2 of '100,' is empty"),
        ("1,nan", "item 2 'nan' is not a finite number"),
        ("inf", "item 1 'inf' is not a finite number"),
        ("1e999", "item 1 '1e999' is not a finite number"),
        ("1_000", "'1_000' is not a number"),
        ("100;200", "'100;200' is not a number"),
    ],
)
def test_parse_values_errors(text, expected):
    assert expected in _err(parse_values, text, what="--x2-values")


def test_parse_axis_range_is_inclusive_without_drift():
    axis = parse_axis("2:10:2", what="--x1")
    assert axis.tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]
    axis = parse_axis("0:0.3:0.1", what="--x1")  # (0.3 - 0) / 0.1 = 2.9999999999999996
    assert len(axis) == 4 and axis[-1] == 0.3
    axis = parse_axis("5:300:0.1", what="--x1")
    assert len(axis) == 2951 and axis[0] == 5.0 and axis[-1] == 300.0
    assert np.array_equal(axis[:-1], 5.0 + np.arange(2950) * 0.1)


def test_parse_axis_stop_off_grid_and_single_point():
    assert parse_axis("0:1:0.3", what="--x1").tolist() == pytest.approx([0.0, 0.3, 0.6, 0.9])
    assert parse_axis("7:7:1", what="--x1").tolist() == [7.0]
    assert parse_axis(" 1 : 2 : 0.5 ", what="--x1").tolist() == [1.0, 1.5, 2.0]


def test_parse_axis_list_is_sorted_unique():
    assert parse_axis("5000, 100,1000,100", what="--x2").tolist() == [100.0, 1000.0, 5000.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:10:0", "--x1: STEP must be positive, got 0"),
        ("1:10:-1", "STEP must be positive"),
        ("10:1:1", "STOP (1) is below START (10)"),
        ("1:10", "is not START:STOP:STEP"),
        ("1:2:3:4", "it has 4 parts"),
        ("a:10:1", "START 'a' is not a number"),
        ("1:inf:1", "STOP 'inf' is not a finite number"),
        ("1:10:nan", "STEP 'nan' is not a finite number"),
        ("", "--x1 is empty"),
        ("1,x", "item 2 'x' is not a number"),
    ],
)
def test_parse_axis_errors(text, expected):
    assert expected in _err(parse_axis, text, what="--x1")


def test_parse_axis_refuses_absurd_point_counts(monkeypatch):
    monkeypatch.setenv("MAT_INTERP_MAX_GRID_POINTS", "1000")
    msg = _err(parse_axis, "0:1:1e-6", what="--x1")
    assert "1,000,001 points" in msg and "1,000" in msg and "MAT_INTERP_MAX_GRID_POINTS" in msg


# --------------------------------------------------------------------------- make_grid


def test_make_grid_order_and_names():
    grid = make_grid(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0]), names=(T, H))
    assert list(grid.columns) == [T, H]
    assert grid.to_numpy().tolist() == [[1, 10], [2, 10], [3, 10], [1, 20], [2, 20], [3, 20]]
    assert (grid.dtypes == np.float64).all()


def test_make_grid_limit():
    msg = _err(make_grid, np.arange(3000.0), np.arange(2000.0), max_points=5_000_000)
    assert "6,000,000 points (3,000 x 2,000)" in msg and "5,000,000" in msg and "MAT_INTERP_MAX_GRID_POINTS" in msg
    assert len(make_grid(np.arange(100.0), np.arange(50.0), max_points=5000)) == 5000


def test_make_grid_rejects_empty_and_nonfinite_axes():
    assert "the x1 axis of the grid is empty" in _err(make_grid, np.array([]), np.array([1.0]))
    assert "non-finite" in _err(make_grid, np.array([1.0]), np.array([np.nan]))
    assert "same name" in _err(make_grid, np.array([1.0]), np.array([1.0]), names=("a", "a"))


# --------------------------------------------------------------------------- validate_project_name


@pytest.mark.parametrize("name", ["ErCo2", "run-7_test.v2", "a", "9lives", "A" * 64])
def test_project_name_good(name):
    assert validate_project_name(name) == name


@pytest.mark.parametrize(
    "name", ["", ".", "..", "/x", "a/b", "a\\b", "-a", "_a", ".hidden", "a b", "é", "a" * 65, "a\n", "x;drop"]
)
def test_project_name_bad(name):
    msg = _err(validate_project_name, name)
    assert "letters, digits, '-', '_' and '.'" in msg and "starting with a letter or digit" in msg


def test_project_name_says_which_characters():
    assert "not allowed: '/'" in _err(validate_project_name, "a/b")


def test_project_name_not_a_string():
    assert "is not allowed" in _err(validate_project_name, None)


# --------------------------------------------------------------------------- the malformed corpus


def _case_id(case) -> str:
    filename, x1, x2, y, expected = case
    return f"{filename}-{'ok' if expected is None else 'bad'}-{y}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_corpus(case):
    filename, x1, x2, y, expected = case
    path = CORPUS_DIR / filename
    if expected is None:
        data = validate(read_table(path), x1, x2, y)
        assert len(data.frame) >= 20 and len(data.x2_values) >= 2
        return
    if x1 is None:  # the file itself is rejected
        assert expected in _err(read_table, path)
    else:  # the file reads, the column choice / values are rejected
        assert expected in _err(validate, read_table(path), x1, x2, y)


def test_corpus_files_are_small_and_all_covered():
    files = {p.name for p in CORPUS_DIR.iterdir() if not p.name.startswith(".")}
    assert len(files) >= 22
    assert files == {case[0] for case in CASES}
    for name in files:
        assert (CORPUS_DIR / name).stat().st_size < 2048, name


def test_corpus_good_files_agree():
    """All accepted variants of the same measurement parse to the same numbers."""
    reference = validate(read_table(CORPUS_DIR / "crlf.csv"), T, H, M).frame
    for name in ("bom.csv", "tab_delimited.tsv", "semicolon_decimal_comma.csv", "trailing_delimiter.csv",
                 "whitespace_padded.csv", "utf16_excel_unicode.csv"):
        pd.testing.assert_frame_equal(validate(read_table(CORPUS_DIR / name), T, H, M).frame, reference)


# --------------------------------------------------------------------------- the paper's training sets


@pytest.mark.parametrize(
    ("filename", "n_rows", "n_x2"),
    [
        ("traindata_Section3_1.csv", 808, 8),
        ("traindata_Section3_2.csv", 2737, 7),
        ("traindata_Section3_3.csv", 767, 7),
        ("traindata_Section3_4.csv", 29977, 31),
    ],
)
def test_paper_data_is_accepted_and_guessed(shared_data, filename, n_rows, n_x2):
    df = read_table(shared_data / filename)
    x1, x2, y = guess_columns(df)
    assert (x1, x2, y) == tuple(df.columns[:3])
    data = validate(df, x1, x2, y)
    assert len(data.frame) == n_rows and len(data.x2_values) == n_x2


# --------------------------------------------------------------------------- lab exports (probed variants)


def test_read_skips_comment_lines_above_the_header_keeping_file_lines():
    text = "# sample: ErCo2\n# mass: 2 mg, weighed twice\n\n" + _csv()
    df = read_table(text.encode())
    assert list(df.columns) == [T, H, M] and df.to_numpy().tolist() == read_table(_csv().encode()).to_numpy().tolist()
    assert df.attrs["comment_lines"] == 2
    bad = "# sample: ErCo2\n" + _csv().replace("\n12.5,100.0,", "\n12.5,x,", 1)
    msg = _err(validate, read_table(bad.encode()), T, H, M, min_rows=1)
    assert "column 'H (Oe)' row 2 (line 4): 'x' is not a number" in msg


def test_read_own_export_with_provenance_lines(tmp_path):
    from mat_interp_core import cli

    out = tmp_path / "grid.csv"
    cli._write_csv(read_table(_csv().encode()), str(out), ["project: p", "source file: a.csv (1,234 bytes, sha256 0)"])
    assert read_table(out).to_numpy().tolist() == read_table(_csv().encode()).to_numpy().tolist()


def test_read_header_written_as_a_comment():
    # numpy.savetxt(..., header="T (K),H (Oe),moment (emu)") writes the column row as "# T (K),..."
    df = read_table(("# " + _csv()).encode())
    assert list(df.columns) == [T, H, M] and len(df) == 24
    df = read_table(("# run 3\n#," + _csv().replace("\n", "\n1,")[:-2]).encode())  # '#' names an index column
    assert list(df.columns) == ["#", T, H, M] and len(df) == 24
    assert "only comment lines" in _err(read_table, b"# a\n# b\n")


def test_read_thousands_points_in_a_decimal_comma_file_are_refused_not_read_as_1():
    # European Excel: '1.000' Oe is a thousand; read as 1 Oe every field would be 1000 times too small
    text = "T (K);H (Oe);moment (emu)\n280,5;1.000;1,5E-03\n282,5;10.000;1,4E-03\n284,5;500;1,3E-03\n"
    msg = _err(read_table, text.encode())
    assert "column 'H (Oe)' line 2: '1.000' in a file with decimal commas could be 1 or 1000" in msg
    assert "remove the thousands separators" in msg
    # only the thousands shape is refused: a stray '282.25' is left to validate, as before
    df = read_table(b"T (K);H (Oe);moment (emu)\n280,5;1000;1,5E-03\n282.25;1000;1,4E-03\n")
    assert df[T].tolist() == ["280,5", "282.25"]


def test_read_tab_file_with_thousands_commas_is_not_read_as_decimal_commas():
    rows = "".join(f"{t}\t{h:,}\t{m}\n" for h in (1000, 10000) for t, m in ((280, 71), (282, 69)))
    msg = _err(read_table, ("T (K)\tH (Oe)\tM (emu/g)\n" + rows).encode())
    assert "every number with a comma (e.g. '1,000' in line 2) has groups of three digits" in msg
    # with decimal points elsewhere the commas group thousands: the cell is named, with the remedy
    rows = "".join(f"{t}\t{h:,}\t{m}\n" for h in (1000, 10000) for t, m in ((280, 7.1), (282, 6.9)))
    df = read_table(("T (K)\tH (Oe)\tM (emu/g)\n" + rows).encode())
    msg = _err(validate, df, T, H, "M (emu/g)", min_rows=1)
    assert "column 'H (Oe)' row 1 (line 2): '1,000' is not a number" in msg and "remove the thousands separators" in msg
    # genuine decimal commas in a tab file are still read as such
    df = read_table("T (K)\tH (Oe)\tM (emu/g)\n280\t1,000\t0,5\n282\t1,000\t0,25\n".encode())
    assert df[H].tolist() == [1.0, 1.0] and df["M (emu/g)"].tolist() == [0.5, 0.25]


def test_read_names_metadata_lines_above_the_column_row():
    # was "line 1 ('Sample: ErCo2') has a single column" / "line 3 has 3 fields but the header (line 1) has 2"
    msg = _err(read_table, ("Sample: ErCo2\nOperator: X\n\n" + _csv()).encode())
    assert "lines 1-3 come before the column names in line 4 ('T (K),H (Oe),moment (emu)')" in msg
    assert "start each with '#'" in msg
    msg = _err(read_table, ("Sample,ErCo2\n" + _csv(sep=";")).encode())
    assert "line 1 comes before the column names in line 2 ('T (K);H (Oe);moment (emu)'); delete it" in msg
    # a ragged data row is still named as such, not taken for a column row
    assert "line 3 has 4 fields" in _err(read_table, b"T,H,M\n1,2,3\n1,2,3,4\n1,2,3\n")
    assert "line 2 has 4 fields" in _err(read_table, b"T,H,M\n1,2,3,\n4,5,6,\n")
