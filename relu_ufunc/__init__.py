"""ReLU, its gradient and relatives as true NumPy ufuncs.

``relu``, ``relu_grad`` and ``relu_backward`` are ``numpy.ufunc`` objects:
``out=``, ``where=``, ``dtype=``, broadcasting, ``ufunc.at`` and pickling work
as for ``np.maximum``.  ``backend`` says which implementation they are.
See SPEC.md for the exact contract and ``python -m relu_ufunc`` for a
self-check and a short benchmark.
"""
from relu_ufunc._version import __version__
from relu_ufunc._ufuncs import relu, relu_backward, relu_grad

backend = "cython"

__all__ = ["__version__", "backend", "relu", "relu_backward", "relu_grad"]
