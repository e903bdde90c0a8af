"""The loop a call runs, as NumPy picks it: the ufunc's own
``resolve_dtypes``.  relu_ufunc inside ``@njit`` code and relu_ufunc.cuda
both ask here, so neither restates NumPy's rules."""
import numpy as np


def loop_dtype(ufunc, dtypes, dtype=None):
    """The dtype of the loop NumPy runs for `ufunc` on inputs of `dtypes`,
    and the ``dtype=`` keyword.

    `dtypes` holds NumPy dtypes, or for a Python scalar its type: ``int`` or
    ``float`` (weak, NEP 50), or ``bool``.  Raises NumPy's own TypeError
    where NumPy's call would (no loop; ``dtype=`` the inputs cannot be cast
    to, same_kind).

    >>> import numpy as np, relu_ufunc as ru
    >>> loop_dtype(ru.leaky_relu, (np.dtype(np.float32), float))
    dtype('float32')
    """
    # Identity, not ==: np.dtype("int64") == int is True.
    dtypes = tuple(d if d is int or d is float else np.dtype(d) for d in dtypes)
    if dtype is None:
        return ufunc.resolve_dtypes((*dtypes, None))[-1]
    signature = (None,) * len(dtypes) + (np.dtype(dtype),)
    return ufunc.resolve_dtypes((*dtypes, None), signature=signature)[-1]
