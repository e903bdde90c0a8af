"""The code a relu_ufunc function runs inside ``@njit`` code.

Typing (`_numba_ext`) picks one of five prewritten implementations for each
call, as numba-scipy's overloads pick among prewritten kernels:

=============  ================================================================
`scalars`      every input a number or a 0-d array, no ``out=``: a number,
               from the one-value formula
`contiguous`   one C- or Fortran-contiguous array (any other input a number)
               and a new output: one call of the ufunc's own loop
`strided`      arrays of the loop's type, any layout, broadcast, ``out=`` or
               not: the loop, once per run the driver finds
`elementwise`  what the loop cannot take (inputs or ``out=`` to cast,
               unaligned data, a ``where=`` array): element by element,
               through the one-value formula
`too_few_dims` ``out=`` with fewer dimensions than the inputs: ValueError
=============  ================================================================

Inputs that overlap ``out=`` other than element for element are copied
first (`strided`, `elementwise`), on a path of its own so that the usual
call pays nothing for it.

Each implementation is a closure over a `Kit`: the loop's type and the
compiled pieces of one function for that type (its C loop, its formula).
The bodies take two inputs; a one-input function passes a dummy second
input, the number 0, which its kit never reads.  The operand helpers below
(``_shape``, ``_strides``, ...) are overloaded on the operand's type, array
or number, so one body serves every combination.
"""
import functools

import numpy as np
from numba import carray, cfunc, njit, types
from numba.cpython.unsafe.tuple import tuple_setitem
from numba.np import numpy_support

from relu_ufunc._constants import HUGEPAGE_FROM
from relu_ufunc._numba_calls import (DRIVE_SYMBOL, cell, drive, given, go, hugepage, keep_alive,
                                     load, loop1, loop2, loop_address, operand, padded_shapes,
                                     read, scalar_caller, store)

# ---- shapes, outputs and overlap, over any number of dimensions -------------


@njit
def _bdim(a, b):
    if a == 1:
        return b
    if b == 1 or b == a:
        return a
    raise ValueError("relu_ufunc: operands could not be broadcast together")


@njit
def broadcast(shapes):
    """The broadcast shape of the four shapes `padded_shapes` gives."""
    a, b, c, d = shapes
    shape = a
    for j in range(len(shape)):
        shape = tuple_setitem(shape, j, _bdim(_bdim(_bdim(a[j], b[j]), c[j]), d[j]))
    return shape


@njit
def _madvised(y, huge):
    if huge and y.nbytes >= HUGEPAGE_FROM:
        hugepage(y.ctypes.data, y.nbytes)
    return y


@functools.lru_cache(maxsize=None)
def new_output(dtype, fortran, huge):
    """output(out, shape): a new array of `dtype`, C or Fortran order.  With
    `huge`, madvise(MADV_HUGEPAGE) from 4 MiB, as NumPy does for its own
    allocations (`hugepage`)."""
    lt = np.dtype(dtype).type
    if fortran:
        @njit
        def output(out, shape):
            return _madvised(np.empty(shape[::-1], lt).T, huge)
    else:
        @njit
        def output(out, shape):
            return _madvised(np.empty(shape, lt), huge)
    return output


@njit
def given_output(out, shape):
    """output(out, shape): the out= array, which must have the broadcast shape."""
    y = given(out)
    if y.shape != shape:
        raise ValueError("relu_ufunc: non-broadcastable output operand: out= does not have "
                         "the shape the inputs broadcast to")
    return y


@njit
def _extent(p, shape, strides, itemsize):
    """The lowest and one past the highest byte address an operand reaches."""
    lo = hi = p
    for d in range(len(shape)):
        if shape[d] == 0:
            return 0, 0
        span = (shape[d] - 1) * strides[d]
        if span < 0:
            lo += span
        else:
            hi += span
    return lo, hi + itemsize


@njit
def overlaps(pa, sa, ia, py, sy, iy, shape):
    """Whether an input (address, strides over `shape`, itemsize; address 0
    for a number) overlaps the output other than element for element, which
    the loops allow (in place)."""
    if pa == 0:
        return False
    alo, ahi = _extent(pa, shape, sa, ia)
    ylo, yhi = _extent(py, shape, sy, iy)
    if ahi <= ylo or yhi <= alo or alo == ahi or ylo == yhi:
        return False
    if pa != py or ia != iy:
        return True
    for d in range(len(shape)):
        if shape[d] > 1 and sa[d] != sy[d]:
            return True
    return False


@njit
def _offset(index, strides):
    o = 0
    for d in range(len(index)):
        o += index[d] * strides[d]
    return o


@njit
def _as_output(p, s, itemsize, py, sy, nbytes, shape):
    """Whether an input can share the output's single loop call: a number
    (itemsize 0), or an array with the output's strides along every axis
    longer than 1 (so, of a contiguous output, contiguous in the same
    order) that is the output itself or does not overlap it."""
    if itemsize == 0:
        return True
    for d in range(len(shape)):
        if shape[d] > 1 and s[d] != sy[d]:
            return False
    return p == py or p + nbytes <= py or py + nbytes <= p


@njit
def _at(address, slot):
    """Where the loop reads an input: an array's data, or for a number
    (address 0) the stack slot holding it (`cell`, made by the caller: it
    must outlive the loop call)."""
    return address if address != 0 else slot


# ---- the driver: compiled once per arity, called by name -------------------
# The driver is plain Numba code, but it is compiled once, as a C function
# per arity (`compiled_drivers`), and implementations call it by name
# (`_numba_calls.drive_caller`) with pointers to their shape and strides: a
# function an implementation calls directly is linked into it and optimized
# again with it, and the driver with its copy path doubled the time to
# compile every call.

@njit
def _call(kind, fn, data, p0, s0, p1, s1, py, sy, n):
    """One call of a loop over n elements: kind 1 or 2, the ufunc's loop
    (`fn`, `data`) for one or two inputs; kind 0, a copy of elements of
    `data` bytes from input 0 to the output."""
    if kind == 1:
        loop1(fn, data, p0, s0, py, sy, n)
    elif kind == 2:
        loop2(fn, data, p0, s0, p1, s1, py, sy, n)
    else:
        for j in range(n):
            for k in range(data):
                store(py + j * sy + k, load(p0 + j * s0 + k, np.uint8))


@njit
def run_of(shape, strides, fortran):
    """(True, step) if an operand of this shape and these strides holds its
    elements, in C (or Fortran) order of the index, at one byte step from its
    first (step 0: one value, broadcast); else (False, 0)."""
    nd = len(shape)
    step = 0
    expect = 0
    first = True
    for i in range(nd):
        d = i if fortran else nd - 1 - i
        if shape[d] == 1:
            continue
        if first:
            step = strides[d]
            expect = step * shape[d]
            first = False
        elif strides[d] != expect:
            return False, 0
        else:
            expect *= shape[d]
    return True, step


@njit
def _run(kind, fn, data, shape, p0, s0, p1, s1, py, sy):
    """The loop over the broadcast `shape`: a single call when every operand
    is one evenly strided run in the output's order, C or Fortran (or a
    single value), else one call per run along the axis where the output's
    stride is smallest, as NumPy's iterator would call it."""
    nd = len(shape)
    size = 1
    for d in range(nd):
        size *= shape[d]
    if size == 0:
        return
    if nd == 0:
        _call(kind, fn, data, p0, 0, p1, 0, py, 0, 1)
        return
    for fortran in (False, True):
        ok_y, step_y = run_of(shape, sy, fortran)
        if ok_y and step_y != 0:
            ok0, f0 = run_of(shape, s0, fortran)
            ok1, f1 = run_of(shape, s1, fortran)
            if ok0 and ok1:
                _call(kind, fn, data, p0, f0, p1, f1, py, step_y, size)
                return
    ax = nd - 1
    best = -1
    for d in range(nd):
        if shape[d] > 1 and (best < 0 or abs(sy[d]) < best):
            best = abs(sy[d])
            ax = d
    n = shape[ax]
    index = np.zeros(nd, np.intp)
    o0 = o1 = oy = 0
    for _ in range(size // n):
        _call(kind, fn, data, p0 + o0, s0[ax], p1 + o1, s1[ax], py + oy, sy[ax], n)
        for d in range(nd - 1, -1, -1):
            if d == ax:
                continue
            index[d] += 1
            o0 += s0[d]
            o1 += s1[d]
            oy += sy[d]
            if index[d] < shape[d]:
                break
            o0 -= s0[d] * shape[d]
            o1 -= s1[d] * shape[d]
            oy -= sy[d] * shape[d]
            index[d] = 0


@njit
def _copied(p, s, itemsize, shape):
    """(buffer, address, strides): a C-ordered copy of an input's elements
    over `shape`, for an input that overlaps the output."""
    size = 1
    for n in shape:
        size *= n
    buf = np.empty(size * itemsize, np.uint8)
    contiguous = np.empty(len(shape), np.intp)
    step = itemsize
    for d in range(len(shape) - 1, -1, -1):
        contiguous[d] = step
        step *= shape[d]
    _run(0, 0, itemsize, shape, p, s, 0, s, np.intp(buf.ctypes.data), contiguous)
    return buf, np.intp(buf.ctypes.data), contiguous


@njit
def _drive(kind, fn, data, shape, p0, s0, i0, p1, s1, i1, py, sy, iy):
    """_run, after copying the inputs that overlap the output unevenly
    (`overlaps`).  A number input comes with itemsize 0."""
    if (i0 != 0 and overlaps(p0, s0, i0, py, sy, iy, shape)) or (
            i1 != 0 and overlaps(p1, s1, i1, py, sy, iy, shape)):
        _drive_copying(kind, fn, data, shape, p0, s0, i0, p1, s1, i1, py, sy, iy)
    else:
        _run(kind, fn, data, shape, p0, s0, p1, s1, py, sy)


@njit
def _drive_copying(kind, fn, data, shape, p0, s0, i0, p1, s1, i1, py, sy, iy):
    b0 = b1 = np.empty(0, np.uint8)
    if i0 != 0 and overlaps(p0, s0, i0, py, sy, iy, shape):
        b0, p0, s0 = _copied(p0, s0, i0, shape)
    if i1 != 0 and overlaps(p1, s1, i1, py, sy, iy, shape):
        b1, p1, s1 = _copied(p1, s1, i1, shape)
    _run(kind, fn, data, shape, p0, s0, p1, s1, py, sy)
    keep_alive(b0, b1)


def _compiled_drive(kind, fn, data, nd, shape, p0, s0, i0, p1, s1, i1, py, sy, iy):
    _drive(kind, fn, data, carray(shape, nd), p0, carray(s0, nd), i0, p1, carray(s1, nd), i1,
           py, carray(sy, nd), iy)


_P = types.CPointer(types.intp)
DRIVE_SIGNATURE = types.void(types.intp, types.intp, types.intp, types.intp, _P, types.intp, _P,
                             types.intp, types.intp, _P, types.intp, types.intp, _P, types.intp)
_DRIVER = []


def compiled_driver():
    """{symbol: address} of the driver, compiled (and cached on disk)."""
    if not _DRIVER:
        _DRIVER.append(cfunc(DRIVE_SIGNATURE, cache=True)(_compiled_drive))
    return {DRIVE_SYMBOL: _DRIVER[0].address}


@njit
def copied(p, s, itemsize, shape):
    """(buffer, address, strides): a C-ordered copy of an input's elements
    over `shape` (element by element, for an input that overlaps out=)."""
    size = 1
    for n in shape:
        size *= n
    buf = np.empty(size * itemsize, np.uint8)
    contiguous = s
    step = itemsize
    for d in range(len(shape) - 1, -1, -1):
        contiguous = tuple_setitem(contiguous, d, step)
        step *= shape[d]
    drive(0, 0, itemsize, shape, p, s, 0, 0, s, 0, np.intp(buf.ctypes.data), contiguous, 0)
    return buf, np.intp(buf.ctypes.data), contiguous


# ---- one function on one type ------------------------------------------------

class Kit:
    """What the implementations need of one function on one loop type:

    - ``dtype``, the loop's type, and ``nin``;
    - ``formula(a, b)``: the one-value formula (cuda/relu_ufunc.h), called
      by its symbol (a one-input function ignores b);
    - ``address()``: (function, data) of the ufunc's own loop;
    """
    _made = {}

    def __new__(cls, name, suffix, nin, dtype):
        key = (name, suffix)
        if key not in cls._made:
            kit = super().__new__(cls)
            kit._build(name, suffix, nin, np.dtype(dtype))
            cls._made[key] = kit
        return cls._made[key]

    def _build(self, name, suffix, nin, dtype):
        scalar = scalar_caller(name, suffix, numpy_support.from_dtype(dtype), nin)
        if nin == 1:
            @njit
            def formula(a, b):
                return scalar(a)
        else:
            @njit
            def formula(a, b):
                return scalar(a, b)
        self.name, self.nin, self.dtype, self.formula = name, nin, dtype, formula
        self.address = loop_address(name, suffix)


def public(kit, body, kind, **facts):
    """The implementation Numba compiles: the function's own signature,
    calling `body(x1, x2, out, where)` (a one-input function passes the
    number 0 as x2, which its kit never reads).  `kind` and `facts` are kept
    on it for the tests."""
    if kit.nin == 1:
        def impl(x, out=None, where=True):
            return body(x, 0, out, where)
    else:
        def impl(x1, x2, out=None, where=True):
            return body(x1, x2, out, where)
    impl.kind, impl.facts = kind, facts
    return impl


# ---- the implementations -----------------------------------------------------

def scalars(kit):
    formula, lt = kit.formula, kit.dtype.type

    @njit
    def body(x1, x2, out, where):
        v1, p1, _, _ = operand(x1, (), lt)
        v2, p2, _, _ = operand(x2, (), lt)
        return formula(read(x1, v1, p1, lt), read(x2, v2, p2, lt))
    return public(kit, body, "scalars")


def contiguous(kit, fortran, huge):
    nin, address, lt = kit.nin, kit.address, kit.dtype.type
    output = new_output(kit.dtype, fortran, huge)

    @njit
    def body(x1, x2, out, where):
        shape = broadcast(padded_shapes(x1, x2, where, out))
        y = output(out, shape)
        if not go(where):
            return y
        # A contiguous input's byte step is its itemsize, a number's 0.
        v1, p1, _, i1 = operand(x1, shape, lt)
        v2, p2, _, i2 = operand(x2, shape, lt)
        c1, c2 = cell(v1), cell(v2)
        fn, data = address()
        _call(nin, fn, data, _at(p1, c1), i1, _at(p2, c2), i2, np.intp(y.ctypes.data), y.itemsize,
              y.size)
        return y
    return public(kit, body, "contiguous", fortran=fortran, hugepage=huge)


def strided(kit, out_given, out_flat, fortran, huge):
    """`out_flat`: the output is C- or Fortran-contiguous (its type says so),
    so inputs laid out as it is, that do not partly overlap it, go to one
    loop call without the driver: ``relu(x, out=y)``, in place or not."""
    nin, address, lt = kit.nin, kit.address, kit.dtype.type
    output = given_output if out_given else new_output(kit.dtype, fortran, huge)

    @njit
    def body(x1, x2, out, where):
        shape = broadcast(padded_shapes(x1, x2, where, out))
        y = output(out, shape)
        if not go(where):
            return y
        v1, p1, s1, i1 = operand(x1, shape, lt)
        v2, p2, s2, i2 = operand(x2, shape, lt)
        c1, c2 = cell(v1), cell(v2)
        py, sy = np.intp(y.ctypes.data), y.strides
        fn, data = address()
        if out_flat and _as_output(p1, s1, i1, py, sy, y.nbytes, shape) and _as_output(
                p2, s2, i2, py, sy, y.nbytes, shape):
            _call(nin, fn, data, _at(p1, c1), i1, _at(p2, c2), i2, py, y.itemsize, y.size)
            return y
        drive(nin, fn, data, shape, _at(p1, c1), s1, i1, _at(p2, c2), s2, i2, py, sy, y.itemsize)
        return y
    return public(kit, body, "strided", out_flat=out_flat, fortran=fortran, hugepage=huge)


def elementwise(kit, out_dtype, out_given, fortran, huge):
    formula, lt, ot = kit.formula, kit.dtype.type, np.dtype(out_dtype).type
    output = given_output if out_given else new_output(kit.dtype, fortran, huge)

    @njit
    def body(x1, x2, out, where):
        shape = broadcast(padded_shapes(x1, x2, where, out))
        y = output(out, shape)
        if not go(where):
            return y
        v1, p1, s1, i1 = operand(x1, shape, lt)
        v2, p2, s2, i2 = operand(x2, shape, lt)
        _, pw, sw, _ = operand(where, shape, np.bool_)     # address 0: no where= array
        py, sy = np.intp(y.ctypes.data), y.strides
        b1 = b2 = np.empty(0, np.uint8)
        if i1 != 0 and overlaps(p1, s1, i1, py, sy, y.itemsize, shape):
            b1, p1, s1 = copied(p1, s1, i1, shape)
        if i2 != 0 and overlaps(p2, s2, i2, py, sy, y.itemsize, shape):
            b2, p2, s2 = copied(p2, s2, i2, shape)
        for index in np.ndindex(shape):
            if pw != 0 and not load(pw + _offset(index, sw), np.bool_):
                continue
            a = read(x1, v1, p1 + _offset(index, s1), lt)
            b = read(x2, v2, p2 + _offset(index, s2), lt)
            store(py + _offset(index, sy), ot(formula(a, b)))
        keep_alive(b1, b2)
        return y
    return public(kit, body, "elementwise", fortran=fortran, hugepage=huge)


def too_few_dims(kit):
    @njit
    def body(x1, x2, out, where):
        raise ValueError("relu_ufunc: out= has fewer dimensions than the inputs broadcast to")
    return public(kit, body, "too_few_dims")
