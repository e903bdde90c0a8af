"""A threaded relu call, then the same call in worker processes.

    python fork_scenario.py START_METHOD RUNNER TIMEOUT

START_METHOD is a multiprocessing start method (fork, forkserver, spawn);
RUNNER starts the workers: process (multiprocessing.Process), pool
(multiprocessing.Pool), executor (concurrent.futures.ProcessPoolExecutor) or
dask (Dask's multiprocessing scheduler, "processes").  The parent sets the
process default to 2 threads and makes one large call, which starts a
team of threads, before it starts any worker.  Each worker makes the same call
in a `threads(2)` block (a spawned worker inherits no setting).

Prints one JSON line.  Exits 0 when every worker answered within TIMEOUT
seconds with the parent's bits, 1 when one gave other bits, 3 when one did
not answer in time (its processes are then killed, so nothing is left
behind).  tests/test_fork.py runs it.
"""
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import sys
import threading

import numpy as np

import relu_ufunc as ru

N = 1 << 20         # 4 MiB of float32 out: a team of 2 in any process


def data():
    return np.random.default_rng(0).standard_normal(N).astype(np.float32)


def digest(y):
    return hashlib.sha256(np.ascontiguousarray(y).view(np.uint8)).hexdigest()


def team_stats():
    """What the C side reports (teams run, fork flag), where there is one."""
    try:
        from relu_ufunc import _ufuncs
        return _ufuncs._team_stats()
    except (ImportError, AttributeError):
        return None


def work(_=None):
    """The call, with 2 threads whatever this process inherited (and a thread
    budget of at least 2, so that a 1-CPU machine runs a team too)."""
    try:
        from relu_ufunc import _ufuncs
        _ufuncs._set_thread_budget(max(2, _ufuncs._team_stats()["budget"]))
    except (ImportError, AttributeError):
        pass
    with ru.threads(2):
        y = ru.relu(data())
        threads = ru.get_num_threads()
    return {"digest": digest(y), "pid": os.getpid(), "threads": threads, "team": team_stats()}


def _put(q):
    q.put(work())


def run_process(ctx, timeout):
    q = ctx.Queue()
    p = ctx.Process(target=_put, args=(q,))
    p.start()
    result = q.get(timeout=timeout)
    p.join(timeout)
    return [result]


def run_pool(ctx, timeout):
    pool = ctx.Pool(2)
    results = pool.map_async(work, range(2)).get(timeout=timeout)
    pool.close()
    pool.join()
    return results


def run_executor(ctx, timeout):
    # Not `with`: its exit waits for the workers, which would hang the test.
    ex = concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx)
    futures = [ex.submit(work) for _ in range(2)]
    results = [f.result(timeout=timeout) for f in futures]
    ex.shutdown()
    return results


def run_dask(ctx, timeout):
    import dask
    import dask.array as da
    out = {}

    def compute():
        # One task per worker, each running work() on a full-size array.
        blocks = da.zeros((2, 1), chunks=(1, 1)).map_blocks(
            lambda b: np.array([[json.dumps(work())]], dtype=object), dtype=object)
        with dask.config.set({"multiprocessing.context": ctx.get_start_method()}):
            out["results"] = [json.loads(s) for s in
                              blocks.compute(scheduler="processes", num_workers=2).ravel()]

    t = threading.Thread(target=compute, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"dask compute did not return in {timeout} s")
    return out["results"]


RUNNERS = {"process": run_process, "pool": run_pool, "executor": run_executor,
           "dask": run_dask}


def main():
    method, runner, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ctx = multiprocessing.get_context(method)
    ru.set_num_threads(2)
    parent = work()                 # the parent's team starts here
    report = {"method": method, "runner": runner, "parent": parent}
    try:
        report["children"] = RUNNERS[runner](ctx, timeout)
    except (TimeoutError, multiprocessing.TimeoutError, concurrent.futures.TimeoutError) as e:
        # queue.Empty too: the worker never answered
        report["error"] = f"no answer in {timeout} s: {type(e).__name__} {e}"
    except Exception as e:  # noqa: BLE001 - reported, then a failure
        import queue
        if not isinstance(e, queue.Empty):
            raise
        report["error"] = f"no answer in {timeout} s: queue.Empty"
    if "error" in report:
        for p in multiprocessing.active_children():
            p.kill()
        print(json.dumps(report), flush=True)
        os._exit(3)
    same = all(c["digest"] == parent["digest"] for c in report["children"])
    print(json.dumps(report), flush=True)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
