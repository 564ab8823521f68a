"""Experiments on the Lorenz system, organised as the original mitosis's users do."""

from . import config
from .odes import run as run_odes
from .sho import run as run_sho

lookup_dict = vars(config)

__all__ = ["lookup_dict", "run_odes", "run_sho"]
