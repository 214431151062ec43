#!/usr/bin/env bash
# Installs moto's S3-compatible server (pinned) into a virtualenv for the S3 storage test.
# Usage: tests/s3/setup.sh [VENV_DIR]   (default: $DIEMDANH_MOTO_VENV or /tmp/diemdanh-moto-venv)
# The test looks for VENV_DIR/bin/moto_server (or `moto_server` on PATH).
set -euo pipefail
MOTO_VERSION="5.2.5"
VENV="${1:-${DIEMDANH_MOTO_VENV:-/tmp/diemdanh-moto-venv}}"
if [ -x "$VENV/bin/moto_server" ] && "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    echo "moto $MOTO_VERSION already in $VENV"
    exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
echo "moto $MOTO_VERSION installed in $VENV"
