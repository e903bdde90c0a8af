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
                "relu_ufunc was installed (most likely no C compiler was found)")
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


_num_threads = 1


def set_num_threads(n):
    """Let one large contiguous call use up to `n` threads; return the old value.

    The default is 1: a call runs on the calling thread, as any NumPy ufunc.
    With n > 1, a call whose output is at least 128 KiB per thread is split
    into up to n chunks run in parallel (OpenMP, Cython backend only; the
    Numba backend and builds without OpenMP stay single-threaded).  Smaller
    calls pay nothing.  The setting is one value for the whole process, not
    per thread: use `threads` to change it for a block of code.
    """
    global _num_threads
    n = _operator.index(n)
    if n < 1:
        raise ValueError(f"number of threads must be at least 1, got {n}")
    old, _num_threads = _num_threads, n
    if backend == "cython":
        from relu_ufunc import _ufuncs
        _ufuncs._set_num_threads(n)
    return old


def get_num_threads():
    """The number of threads set by `set_num_threads` (default 1)."""
    return _num_threads


@_contextlib.contextmanager
def threads(n):
    """``with relu_ufunc.threads(2): ...`` sets the threads for the block and
    restores the old value after it (process-wide, see `set_num_threads`)."""
    old = set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(old)


backend, _impl = _select_backend()
relu = _impl.relu
relu_grad = _impl.relu_grad
relu_backward = _impl.relu_backward
leaky_relu = _impl.leaky_relu
leaky_relu_grad = _impl.leaky_relu_grad
del _impl

# Numba runs its entry points, relu_ufunc._numba_ext.init among them, at its
# first compilation; on the Numba backend that is during this import, before
# the names above existed, so that call left the work to this one.
if "relu_ufunc._numba_ext" in _sys.modules:
    _sys.modules["relu_ufunc._numba_ext"].init_after_import()

__all__ = ["__version__", "backend", "get_array_module", "get_include", "get_num_threads",
           "leaky_relu", "leaky_relu_grad", "relu", "relu_backward", "relu_grad",
           "set_num_threads", "threads"]
