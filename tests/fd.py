"""Central finite differences of a generated trainer's own loss: the reference every
trainer gradient test compares against (one copy, imported by the test modules)."""
import numpy as np

FD_STEP = 1e-6


def finite_differences(trainer, params, X, Y, step=FD_STEP):
    """{name: array} of (L(p + h) - L(p - h)) / 2h for every entry of every parameter."""
    grads = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + step
            up = trainer.loss(params, X, Y)
            value[idx] = old - step
            down = trainer.loss(params, X, Y)
            value[idx] = old
            g[idx] = (up - down) / (2 * step)
        grads[name] = g
    return grads
