"""A whole experiment in one module, run with `mitosis -m single_module`."""

lookup_dict = {"width": {"narrow": 2, "wide": 5}}


def run(width=1, seed=0):
    return {"main": float(width) ** 2 + seed, "metrics": {"area": float(width) ** 2}}
