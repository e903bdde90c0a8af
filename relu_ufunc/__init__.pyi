from typing import Final, Literal

import numpy as np

__version__: Final[str]
backend: Literal["cython", "numba"]

relu: np.ufunc
relu_grad: np.ufunc
relu_backward: np.ufunc
