#!/usr/bin/env bash
# Installs Schemathesis (pinned with every dependency, tests/schemathesis/requirements.txt) into a
# virtualenv for the contract fuzzing test (tests/it/schemathesis.rs).
# Usage: tests/schemathesis/setup.sh [VENV_DIR]
#   (default: $DIEMDANH_SCHEMATHESIS_VENV or /tmp/diemdanh-schemathesis-venv)
# The test runs VENV_DIR/bin/st.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${1:-${DIEMDANH_SCHEMATHESIS_VENV:-/tmp/diemdanh-schemathesis-venv}}"
STAMP="$VENV/.diemdanh-requirements"
if [ -x "$VENV/bin/st" ] && cmp -s "$HERE/requirements.txt" "$STAMP"; then
    echo "schemathesis already in $VENV ($("$VENV/bin/st" --version))"
    exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$HERE/requirements.txt"
"$VENV/bin/python" -m pip check --disable-pip-version-check
cp "$HERE/requirements.txt" "$STAMP"
echo "$("$VENV/bin/st" --version) installed in $VENV"
