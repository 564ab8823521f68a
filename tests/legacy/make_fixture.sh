#!/usr/bin/env bash
# Make tests/legacy/original_trials/: a trials folder written by the ORIGINAL mitosis 0.6.1.
#
# Run from anywhere with network access to PyPI (or a wheel in $MITOSIS_WHEEL):
#     bash tests/legacy/make_fixture.sh
# It installs mitosis==0.6.1 in a venv of its own (never the project's), makes a tiny git
# investigation in a temp dir, runs the original's `mitosis` command five times (two variants
# of a one-step experiment, the first one's second iteration, a two-step run, and a debug
# trial) and copies the trials folder here. The lookup's values are one character long on
# purpose: 0.6.1 compares only the first character of a stored value when a variant is used
# again, so a repeated variant whose value is longer is refused as a conflict.
# Last run on 2026-12-06 with Python 3.11, as
#     MITOSIS_WHEEL=/path/to/mitosis-0.6.1-py3-none-any.whl bash tests/legacy/make_fixture.sh
# (the 0.6.1 wheel as published on PyPI; its dependencies came from PyPI).
#
# Three things are changed in the copy. Two would not survive a git checkout: the
# original links each metadata folder's `experiment` to its page with an absolute path (made
# relative here), and writes the full `pip freeze` of that venv (cut to its first lines). And
# each page's inline stylesheets (280 KB of JupyterLab CSS per page) are dropped, to keep the
# fixture small; the pages' cells and outputs are as the original wrote them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
target="$here/original_trials"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "${MITOSIS_WHEEL:-mitosis==0.6.1}"

inv="$work/investigation"
mkdir -p "$inv/fit"
cd "$inv"
cat > pyproject.toml <<'TOML'
[project]
name = "fit"
version = "0.0.1"

[tool.mitosis.steps]
fit = ["fit.steps:fit", "fit.steps:lookup"]
score = ["fit.steps:score", "fit.steps:lookup"]
TOML
touch fit/__init__.py
cat > fit/steps.py <<'PY'
def fit(slope, noise=0.0):
    points = [slope * x + noise for x in range(4)]
    return {"main": slope * 1.5, "metrics": {"mse": noise**2}, "data": points}


def score(points, scale):
    return {"main": sum(points) * scale, "metrics": ["sum", "scale"]}


lookup = {
    "slope": {"one": 1, "two": 2},
    "noise": {"none": 0, "some": 0.5},
    "scale": {"half": 0.5},
}
PY
git init -q -b main .
git -c user.name=fixture -c user.email=fixture@example.invalid add -A
git -c user.name=fixture -c user.email=fixture@example.invalid commit -q -m "tiny investigation"

export PYTHONPATH="$inv"
run() { "$work/venv/bin/mitosis" "$@" -F trials; }
run fit -p fit.slope=one -p fit.noise=none
run fit -p fit.slope=two -p fit.noise=some
run fit -p fit.slope=one -p fit.noise=none
run fit score -p fit.slope=two -p fit.noise=none -p score.scale=half
run fit -d -p fit.slope=one -e fit.noise=0.25

for link in trials/*/experiment; do
    page="$(basename "$(readlink "$link")")"
    rm "$link"
    ln -s "../$page" "$link"
done
for freeze in trials/*/requirements.txt; do
    head -n 3 "$freeze" > "$freeze.cut" && mv "$freeze.cut" "$freeze"
done
python3 - trials/trial_*.html <<'PY'
import re
import sys

for name in sys.argv[1:]:
    with open(name, encoding="utf-8") as page:
        text = page.read()
    with open(name, "w", encoding="utf-8") as page:
        page.write(re.sub(r"<style[^>]*>.*?</style>", "", text, flags=re.DOTALL))
PY
rm -rf "$target"
cp -a trials "$target"
echo "wrote $target"
