"""relu_ufunc's controller for threadpoolctl.

Imported only once threadpoolctl is (relu_ufunc/__init__.py registers it
then), so ``import relu_ufunc`` never imports threadpoolctl.

threadpoolctl finds native thread pools among the shared libraries loaded
in the process; relu_ufunc's is the compiled extension, recognized by its
file name and by a symbol only it exports (relu_ufunc_get_num_threads, from
_threads.h).  The controller reads and sets the calling thread's setting,
as a ``threads()`` block does: ``threadpool_limits(1)`` turns relu_ufunc's
threads off for the calls the limiting thread makes, and restores that
thread's setting exactly afterwards.
"""
import os

import threadpoolctl

import relu_ufunc
from relu_ufunc import _ufuncs


class _Count(int):
    """A thread count as threadpoolctl reads it, remembering the calling
    thread's own setting (0: none).  threadpool_limits restores the count it
    read on entry; handed back this object, set_num_threads restores exactly
    that state, so a thread that used the process default before the block
    uses the default again after it (and follows later set_num_threads)."""

    own = 0


class ReluUfuncController(threadpoolctl.LibController):
    # relu_ufunc's threads are a native pool of its own (pthreads), which
    # users limit as they limit OpenMP's: limiting "openmp" limits them.
    user_api = "openmp"
    internal_api = "relu_ufunc"
    filename_prefixes = (os.path.basename(_ufuncs.__file__).lower(),)
    check_symbols = ("relu_ufunc_get_num_threads",)

    def get_num_threads(self):
        count = _Count(relu_ufunc.get_num_threads())
        count.own = relu_ufunc._setting.get_own()
        return count

    def set_num_threads(self, num_threads):
        if isinstance(num_threads, _Count):
            relu_ufunc._setting.set_own(num_threads.own)
        else:
            relu_ufunc._setting.set_own(relu_ufunc._check_count(num_threads))

    def get_version(self):
        return relu_ufunc.__version__

    def set_additional_attributes(self):
        # Whether this build has threads (without, calls are single-threaded).
        self.openmp = bool(_ufuncs.HAVE_THREADS)
