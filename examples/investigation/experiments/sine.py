"""Recover the amplitude of a noisy sine wave with ``wavefit.fit_sine``.

Registered in ``pyproject.toml`` as the step ``sine``.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from wavefit import evaluate_sine, fit_sine

logger = logging.getLogger(__name__)

lookup_dict: dict[str, dict[str, Any]] = {
    "frequency": {"slow": 1.0, "fast": 10.0},
    "noise": {"low": 0.05, "high": 0.5},
}


def run(
    frequency: float,
    amplitude: float = 1.0,
    noise: float = 0.1,
    n_points: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Sample a noisy sine on ``[0, 1)``, fit it, and report how well the fit did.

    Args:
        frequency: Frequency of the true wave, in cycles per unit time.
        amplitude: Amplitude of the true wave.
        noise: Standard deviation of the additive Gaussian noise.
        n_points: Number of samples.
        seed: Seed of the random generator.

    Returns:
        ``main`` is the RMS error of the fitted curve against the noise-free wave;
        ``metrics`` holds that ``rmse`` and the ``amplitude_error``.
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n_points, endpoint=False)
    true_phase = 0.3
    clean = evaluate_sine(t, amplitude, true_phase, frequency)
    observed = clean + rng.normal(scale=noise, size=n_points)

    fitted_amplitude, fitted_phase = fit_sine(t, observed, frequency)
    fitted = evaluate_sine(t, fitted_amplitude, fitted_phase, frequency)
    rmse = float(np.sqrt(np.mean((fitted - clean) ** 2)))
    amplitude_error = abs(fitted_amplitude - amplitude)
    logger.info("fitting %d points at frequency %s with noise %s", n_points, frequency, noise)
    logger.info(
        "fitted amplitude %.4f (true %.4f), phase %.4f", fitted_amplitude, amplitude, fitted_phase
    )

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(t, observed, ".", markersize=3, alpha=0.6, label="noisy samples")
    ax.plot(t, clean, "k--", linewidth=1, label="true wave")
    ax.plot(t, fitted, "C3", linewidth=1.5, label="least-squares fit")
    ax.set_xlabel("t")
    ax.set_ylabel("y")
    ax.set_title(f"sine fit: f={frequency}, A={amplitude}, noise={noise}")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    plt.show()
    plt.close(fig)

    print(f"amplitude {fitted_amplitude:.4f} vs {amplitude:.4f}; rmse {rmse:.4g}")
    return {"main": rmse, "metrics": {"rmse": rmse, "amplitude_error": amplitude_error}}
