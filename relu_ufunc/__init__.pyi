from types import ModuleType
from contextlib import AbstractContextManager
from typing import Final, Literal, SupportsIndex

import numpy as np

__version__: Final[str]
backend: Literal["cython", "numba"]

relu: np.ufunc
relu_grad: np.ufunc
relu_backward: np.ufunc
leaky_relu: np.ufunc
leaky_relu_grad: np.ufunc
add_relu: np.ufunc

def get_include() -> str: ...
def get_array_module(x: object) -> ModuleType: ...
def set_num_threads(n: SupportsIndex) -> int: ...
def get_num_threads() -> int: ...
def threads(n: SupportsIndex) -> AbstractContextManager[None]: ...
