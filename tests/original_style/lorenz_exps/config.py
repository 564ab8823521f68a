"""Named parameter values, beside the helpers and constants that build them."""

import numpy as np

T_END = 10.0
t_end = T_END  # a constant the helpers share, named like an argument of run


def _grid(n):
    return np.linspace(0, T_END, n)


def coarse_grid():
    return _grid(11)


noise = {"none": 0.0, "low": 0.01, "high": 0.1}
points = {"few": 11, "many": 101}
# A tracked value holding `...`: which axes of the state the fit sees.
axes = {"all": (..., slice(None)), "first": (..., 0)}
solver = {"lsq": {"method": "lstsq", "tol": 1e-8}}
