"""Jupyter kernels for trials (jupyter_client): started fresh, ahead of need when they can
be, asked about the user's code before a trial, and stopped for good whatever happened.
"""

from mitosis.adapters.kernels.ahead import KernelAhead
from mitosis.adapters.kernels.launch import (
    SAME_INTERPRETER,
    TrialKernel,
    kernel_environment,
    start_kernel,
    stop_kernel,
)

__all__ = [
    "SAME_INTERPRETER",
    "KernelAhead",
    "TrialKernel",
    "kernel_environment",
    "start_kernel",
    "stop_kernel",
]
