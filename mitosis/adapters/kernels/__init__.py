"""Jupyter kernels for trials: started fresh, ahead of need when they can be, asked about
the user's code before a trial, and stopped for good whatever happened.

``spawn`` starts a kernel of this interpreter with the standard library alone; ``launch``
is jupyter_client's side (taking such a kernel over, starting a named kernelspec,
stopping); ``asking`` talks to a booted kernel; ``ahead`` ties them together for a kernel
started before it is needed. Importing this package imports nothing: ``mitosis-nb run``
starts its first kernel (``spawn``) before the runner has imported anything more.
"""
