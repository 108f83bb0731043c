"""Reading speed of a Quantum Design .dat: a 100 000-row MPMS3-layout file (60 columns, CRLF) written by
mat_interp_core.synthetic, read, merged and grouped into set points. Target: under 2 s.

    nice -n 10 python bench/readers.py [--rows 100000] [--repeats 5]

Prints CPU and wall time of every repeat, the median and the worst. On a shared machine the wall clock also
counts other processes; the CPU time is the reader's own.
"""

from __future__ import annotations

import argparse
import statistics
import time

from mat_interp_core import readers, synthetic

TARGET_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    fields = (100, 1000, 5000, 10000, 20000, 35000, 50000)
    raw = synthetic.quantum_design_dat(fields_Oe=fields, n_points=args.rows // len(fields) + 1)
    cpu_times, wall_times = [], []
    for i in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        loaded = readers.load([("big.dat", raw)])
        data, _ = readers.prepare(loaded, "Temperature (K)", "Magnetic Field (Oe)", "Moment (emu)")
        cpu_times.append(time.process_time() - cpu)
        wall_times.append(time.perf_counter() - wall)
        print(f"repeat {i + 1}: {len(loaded.frame):,} rows, {len(data.x2_values)} set points, "
              f"{cpu_times[-1]:.2f} s CPU, {wall_times[-1]:.2f} s wall")
    print(f"{len(raw) / 2**20:.1f} MB file, {loaded.frame.shape[1]} columns: CPU median {statistics.median(cpu_times):.2f} s, "
          f"worst {max(cpu_times):.2f} s; wall median {statistics.median(wall_times):.2f} s, worst {max(wall_times):.2f} s "
          f"(target {TARGET_S:g} s: {'met' if max(cpu_times) < TARGET_S else 'NOT met'} on CPU time, "
          f"{'met' if max(wall_times) < TARGET_S else 'NOT met'} on wall time)")


if __name__ == "__main__":
    main()
