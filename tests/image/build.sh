#!/usr/bin/env bash
# Builds the image from the Dockerfile with podman (no daemon), on base images made here from
# Debian's packages (tests/image/bases.sh): CI's machines cannot pull from Docker Hub. On a
# machine that can, `podman build -t diemdanh .` (or docker build) uses Docker Hub's bases.
#   tests/image/build.sh [IMAGE]      (default localhost/diemdanh:test)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
image="${1:-localhost/diemdanh:test}"
export CONTAINERS_CONF="$here/containers.conf"

"$here/bases.sh" >/dev/null
started=$(date +%s)
# Docker's format: OCI images have no HEALTHCHECK.
podman build --network host --format docker \
    --build-arg RUST_IMAGE=localhost/diemdanh-base/rust:bookworm \
    --build-arg RUNTIME_IMAGE=localhost/diemdanh-base/debian:bookworm \
    -t "$image" "$root"
echo "image $image built in $(( $(date +%s) - started )) s; $(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec) uncompressed"
