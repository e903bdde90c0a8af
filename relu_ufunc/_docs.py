"""Docstrings shared by every backend (Cython, Numba, CUDA).

NumPy puts the call signature in front of a ufunc's docstring, so each text
starts with its one-line summary.
"""

_UFUNC_KEYWORDS = """\
Being a true ``numpy.ufunc``, it takes ``out=``, ``where=``, ``dtype=``,
``casting=``, ``order=``, ``subok=`` and ``signature=``, broadcasts its
inputs, and has ``.at``, ``.outer`` and friends."""

DOCS = {
    "relu": f"""\
Rectified linear unit, elementwise: ``x`` where ``x > 0``, else ``+0``.

    relu(x) = x   if x > 0
              +0  if x <= 0  (also for -0.0 and -inf; never -0.0)
              NaN if x is NaN (no RuntimeWarning)

Dtypes: float16, float32, float64, longdouble and every signed and unsigned
integer type; the output has the input's dtype (for unsigned integers relu
is the identity).  Complex, string, datetime and object inputs raise
``TypeError``.

{_UFUNC_KEYWORDS}  ``relu(x, out=x)`` works in place.

Examples
--------
>>> import numpy as np, relu_ufunc as ru
>>> ru.relu(np.array([-2.0, -0.0, 0.5, np.nan]))
array([0. , 0. , 0.5, nan])
>>> x = np.array([-1, 3], dtype=np.int8)
>>> ru.relu(x, out=x)          # in place: the forward pass of a network
array([0, 3], dtype=int8)
""",
    "relu_grad": f"""\
Derivative of relu, elementwise: ``1`` where ``x > 0``, else ``0``.

    relu_grad(x) = 1   if x > 0
                   0   if x <= 0  (the subgradient at 0 is taken as 0)
                   NaN if x is NaN (no RuntimeWarning)

Dtypes: float16, float32, float64, longdouble and every signed and unsigned
integer type; the output has the input's dtype (for unsigned integers it is
``x != 0``).

{_UFUNC_KEYWORDS}

Examples
--------
>>> import numpy as np, relu_ufunc as ru
>>> ru.relu_grad(np.array([-2.0, 0.0, 0.5, np.inf], dtype=np.float32))
array([0., 0., 1., 1.], dtype=float32)
""",
    "relu_backward": f"""\
Backward pass of relu: ``dy`` where ``x > 0``, else ``0``.

    relu_backward(dy, x) = dy  if x > 0  (whatever dy is, inf and NaN too)
                           0   if x <= 0
                           NaN if x is NaN

Equals ``dy * relu_grad(x)`` except that ``dy`` is never multiplied, so an
infinite or NaN ``dy`` where ``x <= 0`` still gives 0.  Because
``relu(x) > 0`` exactly where ``x > 0``, ``relu_backward(dy, relu(x))``
equals ``relu_backward(dy, x)``: keep only the activation and run the
forward pass in place.

Dtypes: float16, float32, float64, longdouble and every signed and unsigned
integer type.  Mixed input dtypes resolve as ``np.add`` does
(int8 with uint8 gives int16).

{_UFUNC_KEYWORDS}

Examples
--------
>>> import numpy as np, relu_ufunc as ru
>>> y = ru.relu(np.array([-1.0, 2.0]))
>>> ru.relu_backward(np.array([np.inf, 3.0]), y)
array([0., 3.])
""",
    "leaky_relu": f"""\
Leaky ReLU, elementwise: ``x`` where ``x > 0``, else ``alpha * x``.

    leaky_relu(x, alpha) = x          if x > 0
                           alpha * x  if x <= 0  (alpha * (-0.0) keeps its sign)
                           NaN        if x is NaN (no RuntimeWarning)

The one multiply is the only rounding.  ``alpha`` broadcasts, so PReLU (one
slope per channel) is ``leaky_relu(x, alpha[:, None])``.

Dtypes: float16, float32, float64 and longdouble (float16 is computed
exactly through float32 registers and rounded once).  Inputs take the first
of these that both cast to safely, as ``np.arctan2`` does; a Python float
``alpha`` does not upcast float32 ``x`` (NEP 50).

{_UFUNC_KEYWORDS}

Examples
--------
>>> import numpy as np, relu_ufunc as ru
>>> ru.leaky_relu(np.array([-2.0, 0.5], dtype=np.float32), 0.1)
array([-0.2,  0.5], dtype=float32)
""",
    "leaky_relu_grad": f"""\
Derivative of leaky_relu: ``1`` where ``x > 0``, else ``alpha``.

    leaky_relu_grad(x, alpha) = 1      if x > 0
                                alpha  if x <= 0  (the slope at 0 is alpha)
                                NaN    if x is NaN

Dtypes: float16, float32, float64 and longdouble; inputs resolve as for
``leaky_relu`` (a Python float ``alpha`` does not upcast float32 ``x``).

{_UFUNC_KEYWORDS}

Examples
--------
>>> import numpy as np, relu_ufunc as ru
>>> ru.leaky_relu_grad(np.array([-2.0, 0.0, 3.0]), 0.01)
array([0.01, 0.01, 1.  ])
""",
    "add_relu": f"""\
ReLU of a sum, in one pass: ``relu(x + b)``.

    add_relu(x, b) = x + b  if x + b > 0
                     +0     if x + b <= 0
                     NaN    if x + b is NaN (no RuntimeWarning from the relu)

The sum is ``np.add``'s, bit for bit (integers wrap; float16 is added in
float32 and rounded once, as NumPy does), so ``add_relu(x, b)`` equals
``relu(np.add(x, b))`` exactly, with ``np.add``'s FP flags (``inf + -inf``
is "invalid") and none from the relu.  ``b`` broadcasts: a layer's bias is
``add_relu(z, b, out=z)``, one pass over ``z`` instead of two.

Dtypes: the integer types, float16, float32, float64 and longdouble;
inputs resolve as for ``np.add`` (``add_relu(int8, uint8)`` is int16, and a
Python scalar does not upcast, NEP 50).  Not associative, so ``reduce``
folds left, ``relu(relu(a0 + a1) + a2)...``, as ``np.subtract.reduce``
does; it has no identity.

{_UFUNC_KEYWORDS}

Examples
--------
>>> import numpy as np, relu_ufunc as ru
>>> ru.add_relu(np.array([[-2.0, 0.5], [1.0, -0.25]]), np.array([1.0, -1.0]))
array([[0., 0.],
       [2., 0.]])
""",
}
