import numpy as np


def run(seed, noise=0.0):
    rng = np.random.default_rng(seed)
    x = np.cos(np.linspace(0, 6, 50)) + noise * rng.standard_normal(50)
    # Metrics returned at the top level, next to main.
    return {"main": float(x.mean()), "coeff_mse": float(np.var(x)), "runtime": 0.5}
