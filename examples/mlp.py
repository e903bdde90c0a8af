"""A two-layer MLP trained with plain NumPy, with relu_ufunc activations.

    python examples/mlp.py [--steps 200]

The forward pass adds the bias and applies relu in one pass over z, in
place, ``add_relu(z, b, out=z)``, and the backward pass uses
``relu_backward(dh, h)`` on the activation itself, so no pre-activation copy
is kept.  The same network is trained again with relu_ufunc in two passes
(``z += b; relu(z, out=z)``, as before add_relu) and with the usual NumPy
spelling (``np.maximum(z + b, 0)`` forward, keeping ``z``, and
``dh * np.greater(z, 0).astype(...)`` backward).  All runs start from the
same weights and must end with the same weights; the time per epoch (one
full-batch step) and the time in bias and activations are measured for each.
"""
import argparse
import time

import numpy as np

import relu_ufunc as ru


def make_data(n=4096, dim=64, classes=4, seed=0):
    """Gaussian blobs: a seeded, synthetic classification problem."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, dim)).astype(np.float32) * 0.15
    labels = rng.integers(0, classes, n)
    x = centers[labels] + rng.standard_normal((n, dim)).astype(np.float32)
    return x, labels


class ReluUfunc:
    """relu_ufunc: bias and relu in one pass, in place; backward from the output."""
    name = "relu_ufunc"

    def forward(self, z, b):
        return ru.add_relu(z, b, out=z)    # z becomes the activation h

    def backward(self, dh, h):
        return ru.relu_backward(dh, h)


class ReluUfuncTwoPasses(ReluUfunc):
    """relu_ufunc before add_relu: the bias, then relu, two passes over z."""
    name = "relu_ufunc, two passes"

    def forward(self, z, b):
        z += b
        return ru.relu(z, out=z)


class NumpyMaximum:
    """The usual NumPy spelling: a new array forward, a mask and a multiply back."""
    name = "np.maximum"

    def forward(self, z, b):
        z = z + b
        self.z = z                         # keeps the pre-activation
        return np.maximum(z, 0)

    def backward(self, dh, h):
        return dh * np.greater(self.z, 0).astype(dh.dtype)


def init_params(dim, hidden, classes, seed=1):
    rng = np.random.default_rng(seed)
    return {"w1": (rng.standard_normal((dim, hidden)) * np.sqrt(2 / dim)).astype(np.float32),
            "b1": np.zeros(hidden, np.float32),
            "w2": (rng.standard_normal((hidden, classes)) * np.sqrt(2 / hidden)).astype(np.float32),
            "b2": np.zeros(classes, np.float32)}


def train(act, x, labels, steps, hidden=256, lr=0.1):
    """Full-batch gradient descent; returns (params, losses, median seconds
    per epoch in bias and activations, median seconds per epoch).  Medians:
    the first calls pay one-time costs (relu_ufunc measures its store plan
    on its first large call)."""
    classes = int(labels.max()) + 1
    p = init_params(x.shape[1], hidden, classes)
    onehot = np.eye(classes, dtype=np.float32)[labels]
    losses, acts, epochs = [], [], []
    for _ in range(steps):
        start = time.perf_counter()
        t_act = 0.0
        z = x @ p["w1"]
        t = time.perf_counter()
        h = act.forward(z, p["b1"])
        t_act += time.perf_counter() - t
        logits = h @ p["w2"] + p["b2"]
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=1, keepdims=True)
        losses.append(float(-np.mean(np.log(prob[np.arange(len(labels)), labels] + 1e-12))))
        dlogits = (prob - onehot) / len(labels)
        dh = dlogits @ p["w2"].T
        t = time.perf_counter()
        dz = act.backward(dh, h)
        t_act += time.perf_counter() - t
        grads = {"w2": h.T @ dlogits, "b2": dlogits.sum(0), "w1": x.T @ dz, "b1": dz.sum(0)}
        for k in p:
            p[k] -= lr * grads[k]
        epochs.append(time.perf_counter() - start)
        acts.append(t_act)
    return p, losses, float(np.median(acts)), float(np.median(epochs))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    x, labels = make_data()
    results = {}
    for act in (ReluUfunc(), ReluUfuncTwoPasses(), NumpyMaximum()):
        p, losses, t_act, epoch = train(act, x, labels, args.steps)
        results[act.name] = (p, t_act, epoch)
        marks = sorted({0, args.steps // 4, args.steps // 2, args.steps - 1})
        print(f"{act.name:>22}: loss " + " -> ".join(f"{losses[i]:.4f}" for i in marks)
              + f"   (steps {', '.join(map(str, marks))})")
    ours = results["relu_ufunc"][0]
    same = all(np.array_equal(ours[k], r[0][k]) for r in results.values() for k in ours)
    print(f"same final weights: {same}")
    print(f"median over {args.steps} epochs (full batch {x.shape[0]} x hidden 256, float32): "
          "time in bias and activations, and time of the whole epoch")
    for name, (_, t_act, epoch) in results.items():
        print(f"  {name:>22}: {t_act * 1e3:7.3f} ms   {epoch * 1e3:7.3f} ms/epoch")
    return results


if __name__ == "__main__":
    main()
