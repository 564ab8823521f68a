"""Linear least-squares fits of sine waves and polynomials."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _as_float_array(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``values`` as a one-dimensional float array, or raise ``ValueError``."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def fit_sine(t: ArrayLike, y: ArrayLike, frequency: float) -> tuple[float, float]:
    """Fit ``y ~ amplitude * sin(2*pi*frequency*t + phase)`` by least squares.

    The model is linear in ``a = amplitude*cos(phase)`` and ``b = amplitude*sin(phase)``
    once rewritten as ``a*sin(w t) + b*cos(w t)``, so one ``lstsq`` call solves it.

    Args:
        t: Sample times.
        y: Observed values at ``t``.
        frequency: Known frequency of the wave, in cycles per unit of ``t``.

    Returns:
        ``(amplitude, phase)`` with ``amplitude >= 0`` and ``phase`` in ``(-pi, pi]``.
    """
    times = _as_float_array(t, "t")
    values = _as_float_array(y, "y")
    if times.shape != values.shape:
        raise ValueError(f"t and y differ in shape: {times.shape} != {values.shape}")
    omega = 2.0 * np.pi * frequency
    design = np.column_stack([np.sin(omega * times), np.cos(omega * times)])
    (a, b), *_ = np.linalg.lstsq(design, values, rcond=None)
    return float(np.hypot(a, b)), float(np.arctan2(b, a))


def evaluate_sine(
    t: ArrayLike, amplitude: float, phase: float, frequency: float
) -> NDArray[np.float64]:
    """Evaluate ``amplitude * sin(2*pi*frequency*t + phase)``."""
    times = _as_float_array(t, "t")
    return amplitude * np.sin(2.0 * np.pi * frequency * times + phase)


def fit_polynomial(x: ArrayLike, y: ArrayLike, degree: int) -> NDArray[np.float64]:
    """Fit a polynomial of ``degree`` to ``(x, y)`` by least squares.

    Args:
        x: Abscissae.
        y: Observed values at ``x``.
        degree: Polynomial degree, at least 0.

    Returns:
        Coefficients, highest power first (the ``numpy.polyval`` convention).
    """
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    xs = _as_float_array(x, "x")
    ys = _as_float_array(y, "y")
    if xs.shape != ys.shape:
        raise ValueError(f"x and y differ in shape: {xs.shape} != {ys.shape}")
    design = np.vander(xs, degree + 1)
    coefficients, *_ = np.linalg.lstsq(design, ys, rcond=None)
    return np.asarray(coefficients, dtype=np.float64)


def evaluate_polynomial(coefficients: ArrayLike, x: ArrayLike) -> NDArray[np.float64]:
    """Evaluate a polynomial (highest power first) at ``x``."""
    return np.asarray(
        np.polyval(np.asarray(coefficients, dtype=np.float64), _as_float_array(x, "x"))
    )
