"""Jupyter kernels for trials: started fresh, ahead of need when they can be, asked about
the user's code before a trial, and stopped for good whatever happened.

``spawn`` starts a kernel of this interpreter with the standard library alone; ``launch``
is jupyter_client's side (taking such a kernel over, starting a named kernelspec,
stopping); ``asking`` talks to a booted kernel; ``ahead`` ties them together for a kernel
started before it is needed. Importing this package imports no jupyter_client: the
runner's first kernels start before it is imported.
"""

from mitosis.adapters.kernels.ahead import KernelAhead
from mitosis.adapters.kernels.spawn import SAME_INTERPRETER, kernel_environment

__all__ = ["SAME_INTERPRETER", "KernelAhead", "kernel_environment"]
