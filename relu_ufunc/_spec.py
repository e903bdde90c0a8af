"""The one typed table every backend is derived from.

Two kinds of rows, as NumPy's ``generate_umath.py`` has ``Ufunc`` and
``TD``, and ufunclab one ``Func`` per ufunc:

- ``TYPES``: one row per NumPy type the ufuncs have loops for, in the order
  NumPy's type resolver should try them (``np.add``'s: signed and unsigned
  integers by width, then float16, float32, float64, longdouble).  That
  order is what makes ``relu_backward(int8, uint8)`` resolve to int16,
  exactly as ``np.add`` does.
- ``FUNCTIONS``: one row per ufunc: its name, its arguments, the types it
  has loops for (type characters, in the TYPES order), and whether it only
  selects among its inputs and constants (then float16 is computed on its
  bits, and NaN input raises no FP flag) or does arithmetic.

Everything else is derived from these rows: the C loop templates' contexts
(setup.py), the Numba loops, the GPU's type lists, the public header's
function list, the scalar API.  ``validate()`` checks the table (order,
duplicates, and that every formula a row needs is defined in
``cuda/relu_ufunc.h``); setup.py runs it before it generates anything.

Adding a dtype: one ``Type`` row here, its formulas in the header (one
``RELU_DEFINE_*`` line for its suffix), and its character in the functions'
``types``.  docs/development.md walks through it.

This module is read by ``setup.py`` (through runpy, before the package is
built) and by the backends, so it imports only the standard library.
"""
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Type:
    """One NumPy type of the loops."""
    char: str        # NumPy's type character
    npy_ctype: str   # NumPy's C name of the type, for the loops' signatures
    family: str      # "int", "uint", "f16" (on its bits), "float", "longdouble"
    numba: str       # Numba's name of the type of the loop's data ("" where none)

    def formula_suffix(self, itemsize):
        """The suffix of this type's formulas in cuda/relu_ufunc.h.  Integers
        are named by signedness and width (``l`` is ``i64`` on LP64 and
        ``i32`` on Windows, so it takes the platform's itemsize), float16
        works on its bits (``f16``), and longdouble has its own (``ld``)."""
        if self.family == "longdouble":
            return "ld"
        if self.family in ("f16", "float"):
            return "f%d" % (8 * itemsize)
        return "%s%d" % ("u" if self.family == "uint" else "i", 8 * itemsize)


@dataclass(frozen=True)
class Function:
    """One ufunc."""
    name: str
    args: tuple      # the names of its inputs, as the docs and kernels spell them
    types: str       # the type characters of its loops, in the TYPES order
    select_only: bool  # only selects among inputs and constants (no arithmetic)

    @property
    def nin(self):
        return len(self.args)


INTEGER_TYPES = "bBhHiIlLqQ"
FLOAT_TYPES = "efdg"

TYPES = (
    Type("b", "npy_byte", "int", "int8"),
    Type("B", "npy_ubyte", "uint", "uint8"),
    Type("h", "npy_short", "int", "int16"),
    Type("H", "npy_ushort", "uint", "uint16"),
    Type("i", "npy_int", "int", "int32"),
    Type("I", "npy_uint", "uint", "uint32"),
    Type("l", "npy_long", "int", "int64"),
    Type("L", "npy_ulong", "uint", "uint64"),
    Type("q", "npy_longlong", "int", "int64"),
    Type("Q", "npy_ulonglong", "uint", "uint64"),
    Type("e", "npy_half", "f16", "uint16"),        # Numba works on its bits
    Type("f", "npy_float", "float", "float32"),
    Type("d", "npy_double", "float", "float64"),
    Type("g", "npy_longdouble", "longdouble", ""),  # Numba has no longdouble
)

@dataclass(frozen=True)
class MLType:
    """One floating format of ml_dtypes, a NumPy user dtype: its loops are
    registered on the ufuncs when ml_dtypes is imported (relu_ufunc/_ml_dtypes.py).
    Its layout (bits, significand bits, bias, special values) is written
    once, on its RELU_DEFINE_SMALL line in cuda/relu_ufunc.h, which
    small_formats() reads."""
    name: str        # the attribute of ml_dtypes (ml_dtypes.bfloat16)
    suffix: str      # the suffix of its formulas in cuda/relu_ufunc.h
    gpu: bool = False  # relu_ufunc.cuda has its kernels (CuPy takes such arrays)


# Every function has a loop for each of these, whichever ml_dtypes has.
# Not here: the unsigned formats (float8_e5m3fnu, float8_e8m0fnu), which
# have no negative values, so relu is the identity on them, and no
# float8_e8m0fnu zero for relu_grad to return.
ML_TYPES = (
    MLType("bfloat16", "bf16", gpu=True),      # CuPy 14: no float8 arrays
    MLType("float8_e3m4", "f8e3m4"),
    MLType("float8_e4m3", "f8e4m3"),
    MLType("float8_e4m3b11fnuz", "f8e4m3b11fnuz"),
    MLType("float8_e4m3fn", "f8e4m3fn"),
    MLType("float8_e4m3fnuz", "f8e4m3fnuz"),
    MLType("float8_e5m2", "f8e5m2"),
    MLType("float8_e5m2fnuz", "f8e5m2fnuz"),
    MLType("float6_e2m3fn", "f6e2m3fn"),
    MLType("float6_e3m2fn", "f6e3m2fn"),
    MLType("float4_e2m1fn", "f4e2m1fn"),
)

FUNCTIONS = (
    Function("relu", ("x",), INTEGER_TYPES + FLOAT_TYPES, True),
    Function("relu_grad", ("x",), INTEGER_TYPES + FLOAT_TYPES, True),
    Function("relu_backward", ("dy", "x"), INTEGER_TYPES + FLOAT_TYPES, True),
    Function("leaky_relu", ("x", "alpha"), FLOAT_TYPES, False),
    Function("leaky_relu_grad", ("x", "alpha"), FLOAT_TYPES, True),
    Function("add_relu", ("x", "b"), INTEGER_TYPES + FLOAT_TYPES, False),
)

# The C type each formula of cuda/relu_ufunc.h takes, by suffix (float16
# travels as its bits, in an unsigned short).
FORMULA_C_TYPES = {
    "i8": "signed char", "u8": "unsigned char", "i16": "short",
    "u16": "unsigned short", "i32": "int", "u32": "unsigned int",
    "i64": "long long", "u64": "unsigned long long",
    "f16": "unsigned short", "f32": "float", "f64": "double", "ld": "long double",
}

# ---- derived views -----------------------------------------------------------

ML_TYPE_BY_SUFFIX = {t.suffix: t for t in ML_TYPES}

_SMALL = re.compile(r"^RELU_DEFINE_SMALL\((\w+),\s*([\w ]+?),\s*(\d+),\s*(\d+),\s*(\d+),\s*"
                    r"RELU_(\w+)\)", re.M)


@dataclass(frozen=True)
class SmallFormat:
    """A format's layout, as its RELU_DEFINE_SMALL line in the header says."""
    ctype: str       # the C type of its bits
    bits: int        # value bits (the low ones of ctype), the top one the sign
    man: int         # significand bits
    bias: int
    kind: str        # "IEEE", "FN", "FNUZ" or "FINITE": where its NaN and inf are

    @property
    def sign(self):
        return 1 << (self.bits - 1)

    @property
    def one(self):
        """The bits of 1.0."""
        return self.bias << self.man


def small_formats(header_text):
    """{suffix: SmallFormat} of the header's RELU_DEFINE_SMALL lines."""
    return {m[0]: SmallFormat(m[1].strip(), int(m[2]), int(m[3]), int(m[4]), m[5])
            for m in _SMALL.findall(header_text)}


TYPE_BY_CHAR = {t.char: t for t in TYPES}
FUNCTION_BY_NAME = {f.name: f for f in FUNCTIONS}
# name -> (nin, type characters)
UFUNCS = {f.name: (f.nin, f.types) for f in FUNCTIONS}
ARG_NAMES = {f.name: f.args for f in FUNCTIONS}
# The functions that do arithmetic are not here (leaky_relu multiplies).
SELECT_ONLY = tuple(f.name for f in FUNCTIONS if f.select_only)


def formula_suffix(char, itemsize):
    """The suffix of the C formula in cuda/relu_ufunc.h for a type character."""
    return TYPE_BY_CHAR[char].formula_suffix(itemsize)


def formula_suffixes(function, itemsize_of):
    """The distinct formula suffixes of a function's loops, in table order;
    itemsize_of(char) gives the platform's itemsize (np.dtype(c).itemsize)."""
    return tuple(dict.fromkeys(formula_suffix(c, itemsize_of(c)) for c in function.types))


def numba_types(function):
    """The type rows of a function's Numba loops: not longdouble (Numba has
    no such type), and float16 (on its bits) only where the function merely
    selects; the leaky_relu multiply goes through float32 instead."""
    return [TYPE_BY_CHAR[c] for c in function.types
            if TYPE_BY_CHAR[c].numba and (TYPE_BY_CHAR[c].family != "f16" or function.select_only)]


def scalar_formulas(itemsize_of):
    """[(ufunc name, nin, formula suffix, type character)]: the formulas on
    one value that @njit code may call (the Cython backend's `cdef api`
    functions, the Numba backend's twins): the types Numba compiles as
    numbers (not float16, not longdouble), one per suffix, the first type
    character with it."""
    out = []
    for f in FUNCTIONS:
        seen = set()
        for t in numba_types(f):
            sfx = t.formula_suffix(itemsize_of(t.char))
            if t.family != "f16" and sfx not in seen:
                seen.add(sfx)
                out.append((f.name, f.nin, sfx, t.char))
    return out


# ---- validation --------------------------------------------------------------

# The header's definition lines: RELU_DEFINE_FORMULAS(f32, ...), RELU_DEFINE_INT(i8, ...)
# define relu, relu_grad and relu_backward (and, for integers, add_relu); RELU_DEFINE_LEAKY(f32,
# ...) the leaky pair; RELU_DEFINE_ADD(f32, ...) add_relu.
_DEFINES = {"RELU_DEFINE_FORMULAS": ("relu", "relu_grad", "relu_backward"),
            "RELU_DEFINE_INT": ("relu", "relu_grad", "relu_backward", "add_relu"),
            "RELU_DEFINE_LEAKY": ("leaky_relu", "leaky_relu_grad"),
            "RELU_DEFINE_ADD": ("add_relu",),
            "RELU_DEFINE_SMALL": tuple(f.name for f in FUNCTIONS)}


def header_formulas(header_text):
    """{(function name, suffix)} that cuda/relu_ufunc.h defines."""
    found = set()
    for macro, names in _DEFINES.items():
        for suffix in re.findall(r"^\s*%s\((\w+)\s*," % macro, header_text, re.M):
            found.update((name, suffix) for name in names)
    return found


def validate(header_text, itemsize_of):
    """Raise ValueError unless the table is consistent: types unique and in
    NumPy's order, every function's types known and in that order, no
    duplicate function, and every (function, suffix) formula defined in the
    header text."""
    chars = [t.char for t in TYPES]
    if len(set(chars)) != len(chars):
        raise ValueError(f"duplicate type rows: {chars}")
    order = INTEGER_TYPES + FLOAT_TYPES
    if "".join(chars) != order:
        raise ValueError(f"TYPES must be in NumPy's order {order!r}, not {''.join(chars)!r}")
    names = [f.name for f in FUNCTIONS]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate function rows: {names}")
    defined = header_formulas(header_text)
    for f in FUNCTIONS:
        unknown = set(f.types) - set(chars)
        if unknown:
            raise ValueError(f"{f.name}: no type row for {sorted(unknown)}")
        positions = [chars.index(c) for c in f.types]
        if positions != sorted(set(positions)):
            raise ValueError(f"{f.name}: types {f.types!r} repeat or are out of NumPy's order")
        for c in f.types:
            sfx = formula_suffix(c, itemsize_of(c))
            if sfx not in FORMULA_C_TYPES:
                raise ValueError(f"{f.name}: no C type for the formula suffix {sfx!r}")
            if (f.name, sfx) not in defined:
                raise ValueError(f"cuda/relu_ufunc.h defines no {f.name}_{sfx} "
                                 f"(type {c!r} of {f.name})")
        for t in ML_TYPES:
            if (f.name, t.suffix) not in defined:
                raise ValueError(f"cuda/relu_ufunc.h defines no {f.name}_{t.suffix} "
                                 f"(ml_dtypes.{t.name})")
    suffixes = [t.suffix for t in ML_TYPES]
    if len(set(suffixes)) != len(suffixes) or set(suffixes) & set(FORMULA_C_TYPES):
        raise ValueError(f"ML_TYPES' suffixes repeat or clash with NumPy types': {suffixes}")
    formats = small_formats(header_text)
    for t in ML_TYPES:
        fmt = formats[t.suffix]
        if fmt.ctype not in ("unsigned char", "unsigned short") or fmt.kind not in (
                "IEEE", "FN", "FNUZ", "FINITE"):
            raise ValueError(f"RELU_DEFINE_SMALL({t.suffix}, ...): {fmt}")
