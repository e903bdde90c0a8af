"""The declarative table every backend is generated from.

One row per ufunc: its arity and the NumPy type characters it has loops for,
in the order NumPy's type resolver should try them.  The order is NumPy's own
(``np.add``'s): signed and unsigned integers by width, then float16, float32,
float64, longdouble.  That order is what makes ``relu_backward(int8, uint8)``
resolve to int16, exactly as ``np.add`` does.

This module is read by ``setup.py`` (to generate the Cython loops) and by the
Numba backend, so it must stay importable without NumPy-version tricks and
without importing the rest of the package.
"""

INTEGER_TYPES = "bBhHiIlLqQ"
FLOAT_TYPES = "efdg"

# name -> (nin, type characters)
UFUNCS = {
    "relu": (1, INTEGER_TYPES + FLOAT_TYPES),
    "relu_grad": (1, INTEGER_TYPES + FLOAT_TYPES),
    "relu_backward": (2, INTEGER_TYPES + FLOAT_TYPES),
    "leaky_relu": (2, FLOAT_TYPES),
    "leaky_relu_grad": (2, FLOAT_TYPES),
}

# The names of each ufunc's inputs, as the docs and the kernels spell them.
ARG_NAMES = {
    "relu": ("x",), "relu_grad": ("x",), "relu_backward": ("dy", "x"),
    "leaky_relu": ("x", "alpha"), "leaky_relu_grad": ("x", "alpha"),
}

# Formulas that only select among their inputs and constants, so that float16
# can be computed on its bits; the leaky pair multiplies.
SELECT_ONLY = ("relu", "relu_grad", "relu_backward")


# The C type each formula of cuda/relu_ufunc.h takes, by suffix (float16
# travels as its bits).
FORMULA_C_TYPES = {
    "i8": "signed char", "u8": "unsigned char", "i16": "short",
    "u16": "unsigned short", "i32": "int", "u32": "unsigned int",
    "i64": "long long", "u64": "unsigned long long",
    "f16": "unsigned short", "f32": "float", "f64": "double", "ld": "long double",
}


def formula_suffix(char, itemsize):
    """The suffix of the C formula in cuda/relu_ufunc.h for a type character.

    Integers are named by signedness and width (``l`` is ``i64`` on LP64 and
    ``i32`` on Windows), float16 works on its bits (``f16``), and longdouble
    has its own (``ld``), whatever its width on the platform.
    """
    if char == "g":
        return "ld"
    if char in FLOAT_TYPES:
        return "f%d" % (8 * itemsize)
    kind = "u" if char in INTEGER_TYPES[1::2] else "i"
    return "%s%d" % (kind, 8 * itemsize)
