"""A two-step pipeline: ``generate`` makes data, ``fit`` fits a polynomial to it.

Registered in ``pyproject.toml`` as the steps ``gen`` and ``fit``; run them together
with ``mitosis-nb run gen fit``. The ``data`` returned by ``generate`` is passed as the
first positional argument of ``fit``.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from wavefit import evaluate_polynomial, fit_polynomial

logger = logging.getLogger(__name__)

generate_lookup: dict[str, dict[str, Any]] = {
    "length": {"short": 50, "long": 500},
    "shape": {"linear": "linear", "quadratic": "quadratic"},
}

fit_lookup: dict[str, dict[str, Any]] = {
    "degree": {"line": 1, "parabola": 2},
    "scale": {"single": 1.0, "double": 2.0},
}

_SHAPES = {
    "linear": (2.0, -1.0),
    "quadratic": (1.5, 0.5, -1.0),
}


def generate(length: int = 100, seed: int = 0, shape: str = "linear") -> dict[str, Any]:
    """Sample a noisy polynomial of the given ``shape`` on ``[-1, 1]``.

    Args:
        length: Number of samples.
        seed: Seed of the random generator.
        shape: ``"linear"`` or ``"quadratic"``.

    Returns:
        ``main`` is the standard deviation of the samples; ``data`` holds ``x`` and ``y``.
    """
    if shape not in _SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {sorted(_SHAPES)}")
    rng = np.random.default_rng(seed)
    x = np.linspace(-1.0, 1.0, length)
    y = evaluate_polynomial(_SHAPES[shape], x) + rng.normal(scale=0.1, size=length)
    spread = float(np.std(y))
    logger.info("generated %d %s samples", length, shape)
    print(f"generated {length} samples of a {shape} signal")
    return {
        "main": spread,
        "data": {"x": x, "y": y},
        "metrics": {"n_samples": float(length), "y_std": spread},
    }


def fit(data: dict[str, Any], degree: int = 1, scale: float = 1.0) -> dict[str, Any]:
    """Fit a polynomial of ``degree`` to ``scale * data["y"]``.

    Args:
        data: The ``data`` returned by :func:`generate`: arrays ``x`` and ``y``.
        degree: Polynomial degree.
        scale: Factor applied to ``y`` before fitting.

    Returns:
        ``main`` is the RMS residual of the fit.
    """
    x = np.asarray(data["x"], dtype=np.float64)
    y = scale * np.asarray(data["y"], dtype=np.float64)
    coefficients = fit_polynomial(x, y, degree)
    fitted = evaluate_polynomial(coefficients, x)
    residual = float(np.sqrt(np.mean((y - fitted) ** 2)))
    logger.info("degree %d fit, coefficients %s", degree, np.round(coefficients, 4).tolist())

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(x, y, ".", markersize=4, alpha=0.7, label="data")
    ax.plot(x, fitted, "C3", label=f"degree {degree} fit")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize="small")
    fig.tight_layout()
    plt.show()
    plt.close(fig)

    print(f"degree {degree} fit: rms residual {residual:.4g}")
    return {
        "main": residual,
        "metrics": {"residual": residual, "leading_coefficient": float(coefficients[0])},
    }
