#!/usr/bin/env bash
# The run script, in the original mitosis's syntax, unchanged.
set -euo pipefail
mitosis odes --param noise=low --param points=many -e seed=1 --param axes=all
mitosis odes -p noise=high -p axes=first -e seed=2 --param +solver=lsq
mitosis sho -p sho.noise=low --eval-param sho.seed=3
mitosis -m single_module -p single_module.width=wide -e +seed=4
mitosis -m single_module --param width=narrow --eval-param seed=5 -d
