"""Experiments of the sine investigation, registered as mitosis steps in pyproject.toml."""
