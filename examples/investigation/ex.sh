#!/usr/bin/env bash
# The official experiments of this investigation. Each one becomes a trial under
# trials/ with its notebook, HTML page and provenance record. Run from the repository
# root with a clean git tree; set MITOSIS to use another mitosis-nb command.
set -euo pipefail

MITOSIS="${MITOSIS:-mitosis-nb}"

# Baseline: a fast, large wave with the default noise; the fit should be near perfect.
$MITOSIS run sine -p frequency=fast -e amplitude=2 --note "baseline: fast sine"

# How much does heavy noise hurt the amplitude estimate of a slow wave?
$MITOSIS run sine -p frequency=slow -p noise=high --note "noise robustness"

# The two-step pipeline: generate a short linear signal, then fit a line to it.
$MITOSIS run gen fit -p gen.length=short -p fit.degree=line --note "two-step pipeline"

