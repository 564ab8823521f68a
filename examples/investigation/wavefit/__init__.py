"""wavefit: the research method of this investigation.

Least-squares fits of sinusoids and polynomials to sampled signals, using
numpy only.
"""

from wavefit.fitting import evaluate_polynomial, evaluate_sine, fit_polynomial, fit_sine

__all__ = ["evaluate_polynomial", "evaluate_sine", "fit_polynomial", "fit_sine"]
