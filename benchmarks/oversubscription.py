"""Oversubscription: Python threads that each ask for an OpenMP team.

    python benchmarks/oversubscription.py [--quick]

P Python threads each make `reps` calls of relu(x, out=y) on arrays of their
own (float32, randn), inside `with relu_ufunc.threads(T)`.  The figure is the
wall time from releasing all P threads together to the last one finishing,
as the median of `rounds` rounds; in each round every configuration runs
once, in a new random order, so that drift on a shared machine hits them
alike.  The total work of a line is P * reps calls, the same for T = 1 and
T = 2.

"budget" is relu_ufunc's cap on the threads that calls asking for teams may
run at once (_threads.h): "cpus" is the default (the CPUs this process may
run on), "off" lifts it (the private _ufuncs._set_thread_budget), which is
how every call got its full team before the cap existed.
"""
import argparse
import sys
import os
import statistics
import threading
import time

import numpy as np

import relu_ufunc as ru
from relu_ufunc import _ufuncs
if __package__ in (None, ""):      # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.cpu import cpu_name  # noqa: E402



def wall_time(arrays, reps, team):
    """Seconds for every thread to make `reps` calls, each in threads(team)."""
    start = threading.Barrier(len(arrays) + 1)
    errors = []

    def work(x, y):
        try:
            with ru.threads(team):
                start.wait()
                for _ in range(reps):
                    ru.relu(x, out=y)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=xy) for xy in arrays]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else 11
    cpus = _ufuncs._team_stats()["budget"]
    # (label, n per thread, calls per thread): in L2/L3 and in memory
    sizes = [("n = 2**20 (4 MiB out)", 1 << 20, 200), ("n = 2**23 (32 MiB out)", 1 << 23, 25)]
    configs = [(1, 1, "cpus"), (1, 2, "cpus"), (1, 4, "off"), (1, 4, "cpus"),
               (4, 1, "cpus"), (4, 2, "off"), (4, 2, "cpus")]
    rng = np.random.default_rng(0)
    print(f"{cpu_name()}, {os.cpu_count()} CPUs (budget at import: {cpus}), "
          f"NumPy {np.__version__}, relu_ufunc {ru.__version__}, "
          f"OpenMP {bool(_ufuncs.HAVE_THREADS)}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    print(f"load average before: {os.getloadavg()}")
    for label, n, reps in sizes:
        arrays = [(rng.standard_normal(n).astype(np.float32), np.empty(n, np.float32))
                  for _ in range(4)]
        samples = {c: [] for c in configs}
        for r in range(rounds):
            for k in np.random.default_rng(r).permutation(len(configs)):
                p, team, budget = configs[k]
                old = _ufuncs._set_thread_budget(10**6 if budget == "off" else cpus)
                try:
                    samples[configs[k]].append(wall_time(arrays[:p], reps, team))
                finally:
                    _ufuncs._set_thread_budget(old)
        print(f"\n{label}, {reps} calls per Python thread, medians of {rounds}:")
        print(f"  {'Python threads x threads per call':35s} {'budget':6s} "
              f"{'wall':>9s}  {'per call':>9s}  min..max")
        for c in configs:
            p, team, budget = c
            s = samples[c]
            med = statistics.median(s)
            print(f"  {f'{p} x {team}':35s} {budget:6s} {med * 1e3:7.1f} ms "
                  f"{med / (p * reps) * 1e6:8.1f} us  "
                  f"{min(s) * 1e3:.1f}..{max(s) * 1e3:.1f} ms")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
