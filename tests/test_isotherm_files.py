"""Isotherm files as labs write them (Quantum Design .dat and plain CSV): read-back jitter of the held temperature,
loops through negative fields. Tiny fixtures written here; only the data path `train --csv` runs before workers."""

from __future__ import annotations

import numpy as np
import pytest

from mat_interp_core import cli, isotherms, readers
from mat_interp_core.dataset import DataError
from mat_interp_core.entropy import MagnetUnits

T, H, M = "Temperature (K)", "Magnetic Field (Oe)", "Moment (emu)"


def isotherm_dat(temps, fields, *, jitter=0.0, seed=0) -> bytes:
    """A .dat of M(H) isotherms: at each temperature (read back with ±jitter) the fields in file order."""
    rng = np.random.default_rng(seed)
    lines = ["[Header]", "INFO,1.0,SAMPLE_MASS", "[Data]", f"Comment,{T},{H},{M}"]
    for t in temps:
        for h in fields:
            tr = t + rng.uniform(-jitter, jitter)
            lines.append(f",{tr:.4f},{h:.2f},{0.05 * np.tanh(h / 20000 * 30 / (tr - 10)):.6e}")
    return "\r\n".join(lines).encode()


def roles_and_data(raw: bytes, tol: float = 0.1, **kwargs):
    loaded = readers.load([("iso.dat", raw)])
    roles = readers.guess_roles(loaded)
    x2 = readers.stepped_axis(loaded.frame, roles.temperature, roles.field, tol)
    x1 = roles.field if x2 == roles.temperature else roles.temperature
    return readers.prepare(loaded, x1, x2, loaded.moment, tolerance=tol, roles=roles, **kwargs)


def test_temperature_jitter_beside_fine_field_steps_is_not_a_temperature_sweep() -> None:
    """Isotherms 1 K apart read back ±0.05 K, 201 fields each (steps of 0.005 of the range): the jitter moved
    the temperature further, relative to its range, than the field steps, and the file was refused as mixing
    both protocols, even with the set-point tolerance raised. Now the tolerance sentence names the problem,
    and with the tolerance raised the isotherms load."""
    raw = isotherm_dat(np.arange(20, 31, 1.0), np.linspace(0, 50000, 201), jitter=0.05)
    with pytest.raises(DataError, match=r"column 'Temperature \(K\)'.*over the set-point tolerance 0.1; raise"):
        roles_and_data(raw)
    data, facts = roles_and_data(raw, tol=0.2)
    assert (data.x1_name, data.x2_name, facts["protocol"]) == (H, T, "M(H)")
    np.testing.assert_allclose(data.x2_values, np.arange(20, 31, 1.0), atol=0.05)


HAND = "keep only the rows at zero field and above"  # the remedy of a file that is no loop
LOOP = np.r_[np.linspace(0, 50000, 11), np.linspace(45000, -50000, 20), np.linspace(-45000, 50000, 20)]


@pytest.mark.parametrize("fields, sweep, remedy", [
    (LOOP, None, "--sweep first"),
    (LOOP, "down", "--sweep first"),
    (np.linspace(0, -50000, 11), None, HAND),  # a sweep to negative fields only
    (np.linspace(-50000, 50000, 21), None, HAND),
    (np.r_[np.linspace(50000, -50000, 21), np.linspace(-45000, 50000, 20)], "first", HAND),  # first sweep: down
])
def test_negative_fields_are_named_not_taken_as_the_start_of_the_field_change(fields, sweep, remedy) -> None:
    """A full loop 0 → 5 → −5 → 5 T loaded silently: the 'up' branch held the virgin curve and the return from
    −5 T, and |ΔS_M| was integrated from −4.5 T (a third of the 0 → 1 T value at 1 T); a sweep 0 → −5 T was
    integrated from −5 T. Now one sentence names the field, the line and the isotherm, and for a loop (both
    branches) the remedy --sweep first; a first sweep that itself reaches −5 T is left to the user."""
    raw = isotherm_dat(np.arange(20, 61, 5.0), fields + np.random.default_rng(1).uniform(-0.5, 0.5, fields.size))
    with pytest.raises(DataError, match=r"^the field 'Magnetic Field \(Oe\)' reaches -[45]\d{4}(\.\d+)? Oe at line "
                                        r"\d+ \(the isotherm at \d+ K\), but \|ΔS_M\| is integrated from the lowest") as err:
        roles_and_data(raw, sweep=sweep)
    text = str(err.value)
    assert remedy in text and text.count(". ") == 0 and text.endswith("."), text
    if remedy == "--sweep first":
        assert HAND not in text and "Data page: the sweep branch 'first'" in text


def test_a_hysteresis_loop_loads_with_sweep_first_as_its_virgin_curves() -> None:
    """Isotherms measured as loops (0 → 5 → −5 → 5 T): --sweep first keeps each isotherm's first sweep up from
    zero field, and |ΔS_M| is that of a file holding only those virgin curves."""
    temps, virgin = np.arange(20, 61, 5.0), np.linspace(0, 50000, 11)
    data, facts = roles_and_data(isotherm_dat(temps, LOOP), sweep="first")
    alone, _ = roles_and_data(isotherm_dat(temps, virgin))
    assert data.frame[H].min() == 0 and len(data.frame) == temps.size * virgin.size
    np.testing.assert_array_equal(data.frame[[H, T, M]].to_numpy(), alone.frame[[H, T, M]].to_numpy())
    assert facts["sweep"] == "first" and f"training on first ({temps.size * virgin.size} rows)" in facts["notes"][0]
    units = MagnetUnits("emu", "Oe", 1.0)
    got, want = (isotherms.isotherm_entropy(d, units, None, dh_tesla=[1, 5]).figures for d in (data, alone))
    assert got["peak_J_per_kgK"].to_list() == want["peak_J_per_kgK"].to_list()


def test_a_first_sweep_down_is_kept_as_it_is() -> None:
    """A file starting at the top field: each isotherm's first sweep is a sweep down, and first keeps it."""
    down = np.linspace(50000, 0, 11)
    data, facts = roles_and_data(isotherm_dat(np.arange(20, 61, 5.0), np.r_[down, np.linspace(5000, 50000, 10)]),
                                 sweep="first")
    assert facts["sweep"] == "first" and len(data.frame) == 9 * 11
    assert data.frame[H].min() == 0 and (data.frame[readers.SWEEP_COLUMN] == "down").all()


def test_train_with_sweep_first_stores_first(tmp_path, capsys) -> None:
    path = tmp_path / "loop.dat"
    path.write_bytes(isotherm_dat(np.arange(20, 61, 5.0), LOOP))
    args = cli.build_parser().parse_args(["train", "loop", "--csv", str(path), "--sweep", "first",
                                          "--mass-mg", "1", "--database", f"sqlite:///{tmp_path}/mi.db"])
    data, units = cli._training_data_from_args(args)
    assert units["sweep"] == "first" and len(data.frame) == 99 and data.frame[H].min() == 0
    assert "training on first (99 rows)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    assert "first sweep" in " ".join(capsys.readouterr().out.split())


def test_zfc_warming_is_the_first_sweep_of_a_temperature_sweep() -> None:
    """M(T) per field: ZFC warming, then FC cooling, then FC warming; first keeps the ZFC warming rows."""
    temps = np.arange(20, 61, 2.0)
    rows = []
    for h in (1000, 10000, 50000):
        for part, ts in (("zfc", temps), ("fc", temps[::-1]), ("fc", temps)):
            rows += [f"{t:g},{h:g},{(0.5 if part == 'zfc' else 1.0) * np.tanh(h / 20000 * 30 / (t - 10)):.6e}"
                     for t in ts]
    loaded = readers.load([("zfc.csv", ("\n".join([f"{T},{H},{M}", *rows]) + "\n").encode())])
    data, facts = readers.prepare(loaded, T, H, M, sweep="first")
    assert facts["sweep"] == "first" and facts["protocol"] == "M(T)" and len(data.frame) == 3 * temps.size
    t, h = data.frame[T].to_numpy(), data.frame[H].to_numpy()
    np.testing.assert_allclose(data.frame[M], 0.5 * np.tanh(h / 20000 * 30 / (t - 10)), rtol=1e-5)


SINGLE = "every curve is already a single sweep (no turnaround), so 'first' kept all rows"


def test_sweep_first_on_single_sweeps_says_it_kept_every_row(tmp_path, capsys) -> None:
    """Every isotherm one sweep up: --sweep first kept every row without a word, as if it had chosen something."""
    raw = isotherm_dat(np.arange(20, 61, 5.0), np.linspace(0, 50000, 11))
    data, facts = roles_and_data(raw, sweep="first")
    assert len(data.frame) == 9 * 11 and SINGLE in facts["data_notes"]
    assert SINGLE not in roles_and_data(raw)[1]["data_notes"]  # said only of 'first'
    assert SINGLE not in roles_and_data(isotherm_dat(np.arange(20, 61, 5.0), LOOP), sweep="first")[1]["data_notes"]
    path = tmp_path / "up.dat"
    path.write_bytes(raw)
    args = cli.build_parser().parse_args(["train", "up", "--csv", str(path), "--sweep", "first",
                                          "--database", f"sqlite:///{tmp_path}/mi.db"])
    cli._training_data_from_args(args)
    assert SINGLE in capsys.readouterr().out


def test_a_remanent_zero_field_is_kept() -> None:
    data, facts = roles_and_data(isotherm_dat(np.arange(20, 61, 5.0), np.r_[-15.0, np.linspace(5000, 50000, 10)]))
    assert facts["protocol"] == "M(H)" and data.frame[H].min() == -15.0 and len(data.x2_values) == 9


def test_negative_fields_load_when_y_is_not_a_moment() -> None:
    """Only magnetisation is integrated into |ΔS_M|: another quantity measured through ±H (a magnetoresistance
    in ohms) keeps its negative fields."""
    raw = isotherm_dat(np.arange(20, 61, 5.0), np.linspace(-50000, 50000, 21)).replace(b"Moment (emu)", b"R (Ohm)")
    loaded = readers.load([("mr.dat", raw)])
    roles = readers.guess_roles(loaded)
    data, _ = readers.prepare(loaded, H, T, "R (Ohm)", tolerance=0.1, roles=roles)
    assert data.frame[H].min() < -49000


@pytest.mark.parametrize("temps, fields, note", [
    (np.arange(20, 61, 5.0), (0, 25000, 50000), "the 9 isotherms have only 3 field points each"),
    (np.arange(20, 61, 2.0), (1000, 50000), "the 21 isotherms have only 2 field points each"),
    (np.arange(20, 61, 5.0), np.linspace(0, 50000, 4), None),
])
def test_isotherms_with_only_three_field_points_load_with_a_note(temps, fields, note) -> None:
    """Isotherms of 3 fields loaded silently: the field dependence |ΔS_M| integrates is then the interpolation's
    between those points. They load, and the data's notes say so (printed by train, shown on the Data page)."""
    data, facts = roles_and_data(isotherm_dat(temps, np.asarray(fields, dtype=float)))
    assert facts["protocol"] == "M(H)" and len(data.x2_values) == len(temps)
    notes = facts.get("data_notes", [])
    if note is None:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].startswith(note) and "interpolation" in notes[0]


def test_temperature_sweeps_at_only_three_fields_load_with_the_same_note() -> None:
    """M(T) at 3 fields: at each temperature |ΔS_M| integrates M(H) over the same 3 field points."""
    lines = [f"{T},{H},{M}"] + [f"{t:g},{h:g},{0.05 * np.tanh(h / 20000 * 30 / (t - 10)):.6e}"
                                for h in (1000, 10000, 50000) for t in np.arange(20, 61, 2.0)]
    loaded = readers.load([("mt.csv", ("\n".join(lines) + "\n").encode())])
    data, facts = readers.prepare(loaded, *readers.guess_columns(loaded))
    assert facts["protocol"] == "M(T)"
    assert facts["data_notes"][0].startswith("the data has only 3 fields: M(H) between them")
