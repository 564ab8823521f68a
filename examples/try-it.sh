#!/usr/bin/env bash
# Copy the example investigation into a fresh git repository, commit it, and run its
# official experiments (ex.sh) there, as a researcher would in their own repository.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
target="${1:-$(mktemp -d "${TMPDIR:-/tmp}/mitosis-example.XXXXXX")}"

mkdir -p "$target"
cp -R "$here/investigation/." "$target/"
cd "$target"
git init -q -b main
git add -A
git -c user.name="${GIT_AUTHOR_NAME:-Example Researcher}" \
    -c user.email="${GIT_AUTHOR_EMAIL:-researcher@example.org}" \
    commit -q -m "The example investigation"

./ex.sh

echo
bin="$(dirname "$(command -v mitosis-nb)")"
echo "The investigation is in $target; its trials are in $target/trials."
echo "Go on there:  cd $target && export PATH=\"$bin:\$PATH\""
echo "Browse them:  mitosis-nb serve   then open http://127.0.0.1:8000/"
echo "  (or, with no mitosis-nb at hand:  python3 -m http.server -d $target/trials 8000)"
