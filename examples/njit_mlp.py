"""A crysx_nn-style network whose forward and backward pass are each one
@njit function, with relu_ufunc called inside them.

    python examples/njit_mlp.py [--steps 30] [--batch 256] [--hidden 1024]

crysx_nn (the seed of this project) writes its layers as Numba functions,
``@njit(cache=True, fastmath=True)``, with ReLU as ``x * (x > 0)`` and its
gradient as ``np.greater(x, 0.).astype(np.float32)``.  The same two-layer
network (softmax cross-entropy, full-batch gradient descent) is trained here
twice, from the same weights:

- relu_ufunc: ``relu(z, out=z)`` in place, so the pre-activation is not kept,
  and ``relu_backward(dh, h)`` from the activation itself;
- the seed: ``z * (z > 0)`` forward, keeping ``z``, and
  ``dh * np.greater(z, 0.).astype(np.float32)`` backward.

Both end with the same weights.  Printed: the time of one training step
(both passes) of each, and of the activations alone (the hidden layer's
forward and backward, also jitted), medians of interleaved rounds.  The
matrix products are plain loops here: Numba's np.dot needs SciPy.
"""
import argparse
import time

import numpy as np
from numba import njit

import relu_ufunc as ru


@njit(cache=True, fastmath=True)
def matmul(a, b):
    """a @ b, float32, as Numba compiles it without BLAS."""
    out = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            aik = a[i, k]
            for j in range(b.shape[1]):
                out[i, j] += aik * b[k, j]
    return out


@njit(cache=True, fastmath=True)
def softmax_grad(logits, onehot):
    """d(mean cross-entropy)/d(logits), and the loss."""
    n = logits.shape[0]
    grad = np.empty_like(logits)
    loss = 0.0
    for i in range(n):
        m = logits[i].max()
        e = np.exp(logits[i] - m)
        p = e / e.sum()
        loss -= np.log(np.sum(p * onehot[i]) + 1e-12)
        grad[i] = (p - onehot[i]) / n
    return grad, loss / n


# ---- relu_ufunc inside the jitted passes ------------------------------------

@njit(cache=True, fastmath=True)
def forward_ufunc(x, w1, b1, w2, b2):
    h = matmul(x, w1) + b1
    ru.relu(h, out=h)                   # in place: h is now the activation
    return h, matmul(h, w2) + b2


@njit(cache=True, fastmath=True)
def backward_ufunc(x, h, w2, dlogits):
    dh = matmul(dlogits, w2.T)
    dz = ru.relu_backward(dh, h)        # from the activation, no z kept
    return matmul(x.T, dz), dz.sum(axis=0), matmul(h.T, dlogits), dlogits.sum(axis=0)


# ---- the seed's spelling --------------------------------------------------------

@njit(cache=True, fastmath=True)
def relu_seed(x):
    return x * (x > 0)


@njit(cache=True, fastmath=True)
def relu_grad_seed(x):
    return np.greater(x, 0.).astype(np.float32)


@njit(cache=True, fastmath=True)
def forward_seed(x, w1, b1, w2, b2):
    z = matmul(x, w1) + b1
    h = relu_seed(z)
    return z, h, matmul(h, w2) + b2


@njit(cache=True, fastmath=True)
def backward_seed(x, z, h, w2, dlogits):
    dh = matmul(dlogits, w2.T)
    dz = dh * relu_grad_seed(z)
    return matmul(x.T, dz), dz.sum(axis=0), matmul(h.T, dlogits), dlogits.sum(axis=0)


# ---- the activations alone (the hidden layer's forward and backward) ----------

@njit(cache=True, fastmath=True)
def activations_ufunc(z, dh):
    ru.relu(z, out=z)
    return ru.relu_backward(dh, z)


@njit(cache=True, fastmath=True)
def activations_seed(z, dh):
    h = relu_seed(z)
    return h, dh * relu_grad_seed(z)


# ---- training -----------------------------------------------------------------------

def make_data(n=256, dim=64, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, dim)).astype(np.float32) * 0.15
    labels = rng.integers(0, classes, n)
    x = centers[labels] + rng.standard_normal((n, dim)).astype(np.float32)
    return x, np.eye(classes, dtype=np.float32)[labels]


def init_params(dim, hidden, classes, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((dim, hidden)) * np.sqrt(2 / dim)).astype(np.float32),
            np.zeros(hidden, np.float32),
            (rng.standard_normal((hidden, classes)) * np.sqrt(2 / hidden)).astype(np.float32),
            np.zeros(classes, np.float32)]


def step(kind, x, onehot, params, lr=0.1):
    """One gradient-descent step; returns the loss."""
    w1, b1, w2, b2 = params
    if kind == "relu_ufunc":
        h, logits = forward_ufunc(x, w1, b1, w2, b2)
        dlogits, loss = softmax_grad(logits, onehot)
        grads = backward_ufunc(x, h, w2, dlogits)
    else:
        z, h, logits = forward_seed(x, w1, b1, w2, b2)
        dlogits, loss = softmax_grad(logits, onehot)
        grads = backward_seed(x, z, h, w2, dlogits)
    for p, g in zip(params, grads):
        p -= np.float32(lr) * g
    return loss


def train(kind, x, onehot, hidden, steps):
    params = init_params(x.shape[1], hidden, onehot.shape[1])
    losses = [step(kind, x, onehot, params) for _ in range(steps)]
    return params, losses


def median_times(fns, rounds=15):
    """Median seconds per call of each fn, timed in interleaved rounds."""
    for fn in fns:
        fn()                                            # compile, or load the cache
    samples = [[] for _ in fns]
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - t)
    return [float(np.median(s)) for s in samples]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=1024)
    args = parser.parse_args(argv)
    x, onehot = make_data(n=args.batch)
    runs = {kind: train(kind, x, onehot, args.hidden, args.steps)
            for kind in ("relu_ufunc", "seed")}
    same = all(np.array_equal(a, b) for a, b in zip(runs["relu_ufunc"][0], runs["seed"][0]))
    print(f"{args.steps} steps, batch {args.batch}, hidden {args.hidden}: loss "
          f"{runs['relu_ufunc'][1][0]:.4f} -> {runs['relu_ufunc'][1][-1]:.4f}; "
          f"same weights as the seed's spelling: {same}")

    p_ours = init_params(x.shape[1], args.hidden, onehot.shape[1])
    p_seed = [p.copy() for p in p_ours]
    t_step = median_times([lambda: step("relu_ufunc", x, onehot, p_ours, lr=0.0),
                           lambda: step("seed", x, onehot, p_seed, lr=0.0)])
    rng = np.random.default_rng(2)
    z = rng.standard_normal((args.batch, args.hidden)).astype(np.float32)
    dh = rng.standard_normal(z.shape).astype(np.float32)
    work = z.copy()

    def ours():
        work[...] = z                   # relu runs in place: restore its input
        activations_ufunc(work, dh)

    def seed():
        work[...] = z                   # the same copy, for the same work
        activations_seed(work, dh)

    t_act = median_times([ours, seed], rounds=51)
    print(f"{'median of rounds':<34} {'relu_ufunc':>11} {'seed x*(x>0)':>13} {'ratio':>6}")
    print(f"{'training step (both passes)':<34} {t_step[0] * 1e3:>9.3f}ms "
          f"{t_step[1] * 1e3:>11.3f}ms {t_step[0] / t_step[1]:>6.2f}")
    print(f"{'activations alone (fwd + bwd)':<34} {t_act[0] * 1e6:>9.1f}us "
          f"{t_act[1] * 1e6:>11.1f}us {t_act[0] / t_act[1]:>6.2f}")
    return runs


if __name__ == "__main__":
    main()
