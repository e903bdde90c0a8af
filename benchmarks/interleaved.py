"""Interleaved timing, shared by the single-purpose benchmark scripts
(add_relu.py, ml_formats.py): every implementation once per round, in a new
random order each round, on the same arrays; each timing repeats its call
until the anchor's lasts about 2 ms; the median per implementation."""
import time

import numpy as np


def timed(f, reps):
    """Seconds per call of f(), over reps calls."""
    t = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t) / reps


def medians(calls, anchor, rounds, rng):
    """{name: median seconds per call} of `calls` ({name: f()}); the number
    of repeats is set by calls[anchor]."""
    reps = max(1, int(2e-3 / max(timed(calls[anchor], 1), 1e-9)))
    samples = {name: [] for name in calls}
    for _ in range(rounds):
        for name in rng.permutation(list(calls)):
            samples[name].append(timed(calls[name], reps))
    return {name: float(np.median(v)) for name, v in samples.items()}
