"""The ufuncs through __array_ufunc__: Dask (also on a real cluster of worker
processes), xarray and pandas.  These libraries are test extras; a test skips
only when its library is absent."""
import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc import _reference
from conftest import assert_same_bits


def data(shape=(60, 40), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    x.flat[::7] = -0.0
    x.flat[::11] = np.nan
    return x


def test_dask_stays_lazy_and_matches_numpy():
    da = pytest.importorskip("dask.array")
    x = data()
    dx = da.from_array(x, chunks=(25, 15))
    dy = da.from_array(data(seed=1), chunks=(25, 15))
    for result, expected in [
        (ru.relu(dx), _reference.relu(x)),
        (ru.relu_grad(dx), _reference.relu_grad(x)),
        (ru.relu_backward(dy, dx), _reference.relu_backward(data(seed=1), x)),
        (ru.leaky_relu(dx, 0.1), _reference.leaky_relu(x, 0.1)),
        (ru.leaky_relu_grad(dx, 0.1), _reference.leaky_relu_grad(x, 0.1)),
    ]:
        assert isinstance(result, da.Array)            # lazy: nothing computed yet
        assert result.chunks == dx.chunks
        assert_same_bits(result.compute(), expected)


@pytest.mark.slow
def test_dask_on_a_distributed_cluster_of_processes():
    """Two worker processes: the ufuncs travel by pickle (by name) and run
    in other interpreters."""
    pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    from distributed import Client, LocalCluster
    x = data((400, 300))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dx = da.from_array(x, chunks=(100, 100))
        y = ru.relu_backward(ru.leaky_relu(dx, 0.2), ru.relu(dx))
        got = client.compute(y).result()
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
    expected = _reference.relu_backward(_reference.leaky_relu(x, 0.2), _reference.relu(x))
    assert_same_bits(got, expected)


def test_xarray_keeps_dims_coords_and_name():
    xr = pytest.importorskip("xarray")
    x = data((3, 4))
    arr = xr.DataArray(x, dims=("batch", "unit"), name="z",
                       coords={"batch": [10, 20, 30], "unit": list("abcd")})
    for out, expected in [(ru.relu(arr), _reference.relu(x)),
                          (ru.leaky_relu(arr, 0.1), _reference.leaky_relu(x, 0.1))]:
        assert isinstance(out, xr.DataArray)
        assert out.dims == ("batch", "unit") and out.name == "z"
        assert list(out.coords["unit"].values) == list("abcd")
        assert_same_bits(out.values, expected)
    grad = ru.relu_backward(xr.ones_like(arr), arr)
    assert grad.dims == arr.dims
    assert_same_bits(grad.values, _reference.relu_backward(np.ones_like(x), x))


def test_pandas_keeps_index_and_columns():
    pd = pytest.importorskip("pandas")
    x = data((5, 3))
    s = pd.Series(x[:, 0], index=list("vwxyz"), name="s")
    out = ru.relu(s)
    assert isinstance(out, pd.Series) and list(out.index) == list("vwxyz") and out.name == "s"
    assert_same_bits(out.to_numpy(), _reference.relu(x[:, 0]))
    df = pd.DataFrame(x, index=list("vwxyz"), columns=["a", "b", "c"])
    for result, expected in [(ru.relu_grad(df), _reference.relu_grad(x)),
                             (ru.leaky_relu(df, 0.5), _reference.leaky_relu(x, 0.5))]:
        assert isinstance(result, pd.DataFrame)
        assert list(result.columns) == ["a", "b", "c"] and list(result.index) == list("vwxyz")
        assert_same_bits(result.to_numpy(), expected)
