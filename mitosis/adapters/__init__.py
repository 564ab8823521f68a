"""Adapters: one module per outside system (files, git, Jupyter, the browser)."""
