"""ReLU, its gradient and relatives as true NumPy ufuncs.

``relu``, ``relu_grad``, ``relu_backward``, ``leaky_relu`` and
``leaky_relu_grad`` are ``numpy.ufunc`` objects:
``out=``, ``where=``, ``dtype=``, broadcasting, ``ufunc.at`` and pickling work
as for ``np.maximum``.  ``backend`` says which implementation they are:
``"cython"`` (the compiled extension) or ``"numba"`` (the fallback, or
``RELU_UFUNC_BACKEND=numba``).  ``python -m relu_ufunc`` runs a self-check and
a short benchmark.
"""
import contextlib as _contextlib
import operator as _operator
import os as _os
import sys as _sys

from relu_ufunc._after_import import after_import as _after_import
from relu_ufunc._version import __version__

_BACKENDS = ("cython", "numba")


def _load_cython():
    # import_module, not `from relu_ufunc import _ufuncs`: where the extension
    # was never built, that says "cannot import name '_ufuncs' from partially
    # initialized module" (a circular import, it suggests) instead of
    # ModuleNotFoundError.
    import importlib
    return importlib.import_module("relu_ufunc._ufuncs")


def _not_built(error):
    """Whether importing the extension failed because it is not there at all."""
    return isinstance(error, ModuleNotFoundError) and error.name == "relu_ufunc._ufuncs"


# How to get the compiled backend, for the messages below.
_HOW_TO_BUILD = ("install a C compiler (gcc, clang or MSVC) and reinstall relu_ufunc "
                 "(pip install --force-reinstall --no-cache-dir relu-ufunc, or "
                 "pip install . in a source checkout)")


def _cython_problem(error):
    if _not_built(error):
        return ("the compiled extension is missing: relu_ufunc._ufuncs was not built when "
                "relu_ufunc was installed (the build found no working C compiler: any other "
                "build failure fails the install)")
    return f"the compiled extension relu_ufunc._ufuncs cannot be imported ({error})"


def _load_numba():
    from relu_ufunc import _numba_backend
    return _numba_backend


def _select_backend():
    choice = _os.environ.get("RELU_UFUNC_BACKEND", "")
    if choice not in ("",) + _BACKENDS:
        raise ImportError(f"RELU_UFUNC_BACKEND={choice!r} is not a relu_ufunc backend; "
                          f"valid values are 'cython', 'numba', or unset")
    if choice == "cython":
        try:
            return "cython", _load_cython()
        except ImportError as e:
            raise ImportError(f"RELU_UFUNC_BACKEND=cython, but {_cython_problem(e)}; "
                              f"{_HOW_TO_BUILD}") from e
    if choice == "numba":
        try:
            return "numba", _load_numba()
        except ImportError as e:
            raise ImportError(f"RELU_UFUNC_BACKEND=numba, but the Numba backend cannot be "
                              f"loaded ({e}); pip install 'relu-ufunc[numba]'") from e
    try:
        return "cython", _load_cython()
    except ImportError as cython_error:
        try:
            module = _load_numba()
        except ImportError as numba_error:
            raise ImportError(
                f"relu_ufunc cannot load: {_cython_problem(cython_error)}, and the Numba "
                f"backend cannot load either ({numba_error}). Either {_HOW_TO_BUILD}, or "
                f"install Numba: pip install 'relu-ufunc[numba]'") from numba_error
        import warnings
        warnings.warn(f"relu_ufunc: {_cython_problem(cython_error)}; using the Numba backend "
                      f"instead. For the compiled backend, {_HOW_TO_BUILD}.",
                      RuntimeWarning, stacklevel=3)
        return "numba", module


def get_include():
    """The folder that holds relu_ufunc.h, the formulas in C and CUDA."""
    here = _os.path.dirname(_os.path.abspath(__file__))
    installed = _os.path.join(here, "include")
    if _os.path.exists(_os.path.join(installed, "relu_ufunc.h")):
        return installed
    return _os.path.join(_os.path.dirname(here), "cuda")     # a source checkout


def get_array_module(x):
    """`relu_ufunc.cuda` for CuPy (or other CUDA) arrays, else `relu_ufunc`.

    Generic code: ``rx = relu_ufunc.get_array_module(x); rx.relu(x, out=x)``.
    CuPy is imported only when `x` is a GPU array."""
    if hasattr(x, "__cuda_array_interface__") or type(x).__module__.startswith("cupy"):
        import relu_ufunc.cuda
        return relu_ufunc.cuda
    return _sys.modules[__name__]


# The threads setting: each thread's own value (0: none), which threads()
# and threadpool_limits set for a block, and the process default, which
# set_num_threads sets and threads without a value of their own use.  On the
# Cython backend both live in C (_threads.h), where the inner loops read
# them on the calling thread; the Numba backend keeps the same two here.
_MAX_THREADS = 2**31 - 1


def _check_count(n):
    n = _operator.index(n)
    if not 1 <= n <= _MAX_THREADS:
        raise ValueError(f"number of threads must be at least 1 (and at most "
                         f"{_MAX_THREADS}), got {n}")
    return n


class _PythonThreadSetting:
    """The setting where there is no C side (the Numba backend)."""

    def __init__(self):
        import threading
        self._default = 1
        self._local = threading.local()

    def get_own(self):
        return getattr(self._local, "own", 0)

    def set_own(self, n):
        old, self._local.own = self.get_own(), n
        return old

    def get_default(self):
        return self._default

    def set_default(self, n):
        old, self._default = self._default, n
        return old

    def get(self):
        return self.get_own() or self._default


class _CThreadSetting:
    """The setting in C, which the inner loops read (Cython backend)."""

    def __init__(self, ufuncs):
        self.get_own = ufuncs._get_own_threads
        self.set_own = ufuncs._set_own_threads
        self.get_default = ufuncs._get_default_threads
        self.set_default = ufuncs._set_default_threads
        self.get = ufuncs._get_num_threads


def set_num_threads(n):
    """Set the process default number of threads; return the old default.

    The default is 1: a call runs on the calling thread, as any NumPy ufunc.
    With n > 1, a contiguous call whose output is at least 128 KiB per
    thread is split into up to n chunks run in parallel by a pool of
    threads (Cython backend, with gcc or clang alike; the Numba backend
    stays single-threaded).  The bits do not depend on n.  Smaller calls
    pay nothing.

    The default applies to every thread of the process that has no setting
    of its own.  A thread has one inside a `threads` block (and inside
    ``threadpoolctl.threadpool_limits``); there the block's value wins.
    """
    return _setting.set_default(_check_count(n))


def get_num_threads():
    """The number of threads a call made on this thread may use now: this
    thread's own setting if it has one (`threads`, threadpool_limits), else
    the process default (`set_num_threads`, 1 unless set)."""
    return _setting.get()


@_contextlib.contextmanager
def threads(n):
    """``with relu_ufunc.threads(2): ...`` sets the threads for the calls this
    Python thread makes in the block, and restores this thread's setting
    after it.  Other threads, and the process default, are untouched; blocks
    nest."""
    n = _check_count(n)
    old = _setting.set_own(n)
    try:
        yield
    finally:
        _setting.set_own(old)


def _register_with_threadpoolctl(threadpoolctl):
    """Register relu_ufunc's controller (threadpoolctl 3.5 and later)."""
    if getattr(threadpoolctl, "register", None) is None:
        return
    try:
        from relu_ufunc._threadpoolctl import ReluUfuncController
        threadpoolctl.register(ReluUfuncController)
    except Exception as e:  # noqa: BLE001 - never break the user's import
        import warnings
        warnings.warn(f"relu_ufunc could not register with threadpoolctl: {e!r}",
                      RuntimeWarning, stacklevel=2)


def _hook_threadpoolctl():
    _after_import("threadpoolctl", _register_with_threadpoolctl)


backend, _impl = _select_backend()
def _register_ml_dtypes(ml_dtypes, impl=_impl):
    """registering relu_ufunc's ml_dtypes loops"""
    from relu_ufunc._ml_dtypes import register     # only once ml_dtypes is imported
    register(impl, ml_dtypes)


_after_import("ml_dtypes", _register_ml_dtypes)
relu = _impl.relu
relu_grad = _impl.relu_grad
relu_backward = _impl.relu_backward
leaky_relu = _impl.leaky_relu
leaky_relu_grad = _impl.leaky_relu_grad
add_relu = _impl.add_relu
_setting = _CThreadSetting(_impl) if backend == "cython" else _PythonThreadSetting()
del _impl
if backend == "cython":     # the Numba backend has no native threads to list
    _hook_threadpoolctl()

# Numba runs its entry points, relu_ufunc._numba_ext.init among them, at its
# first compilation; on the Numba backend that is during this import, before
# the names above existed, so that call left the work to this one.
if "relu_ufunc._numba_ext" in _sys.modules:
    _sys.modules["relu_ufunc._numba_ext"].init_after_import()

__all__ = ["__version__", "add_relu", "backend", "get_array_module", "get_include",
           "get_num_threads",
           "leaky_relu", "leaky_relu_grad", "relu", "relu_backward", "relu_grad",
           "set_num_threads", "threads"]
