#!/usr/bin/env bash
# Makes the two base images the Dockerfile builds on, for machines that cannot pull from Docker
# Hub (CI's machines reach Debian's package mirrors and nothing else):
#   localhost/diemdanh-base/debian:bookworm  Debian 12 (minbase) from deb.debian.org by debootstrap,
#                                            standing in for debian:bookworm-slim;
#   localhost/diemdanh-base/rust:bookworm    that, with gcc and libpq-dev, and this machine's own
#                                            Rust toolchain (rustup's stable), standing in for
#                                            rust:1-bookworm.
# Idempotent: images already present are kept. Needs root, debootstrap and podman.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="$here/containers.conf"

debian=localhost/diemdanh-base/debian:bookworm
rust=localhost/diemdanh-base/rust:bookworm
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! podman image exists "$debian"; then
    echo "bases: debootstrap Debian bookworm"
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
        || { cat "$work/debootstrap.log"; exit 1; }
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -c . | podman import --quiet - "$debian" >/dev/null
    rm -rf "$work/rootfs"
fi

if ! podman image exists "$rust"; then
    echo "bases: Rust toolchain image"
    sysroot="$(rustc --print sysroot)"
    mkdir -p "$work/rust/toolchain"
    # The compiler, cargo and the standard library; not the documentation (most of its size).
    for part in bin lib libexec etc; do
        [ -d "$sysroot/$part" ] && cp -a "$sysroot/$part" "$work/rust/toolchain/"
    done
    # This machine's own certificate authorities (CI reaches crates.io through a proxy that
    # signs with a CA of its own): the build stage's cargo downloads the crates.
    mkdir -p "$work/rust/ca"
    cp /usr/local/share/ca-certificates/*.crt "$work/rust/ca/" 2>/dev/null || true
    cat >"$work/rust/Containerfile" <<CONTAINERFILE
FROM $debian
RUN apt-get update \\
    && apt-get install -y --no-install-recommends gcc libc6-dev libpq-dev pkg-config ca-certificates \\
    && rm -rf /var/lib/apt/lists/*
COPY ca /usr/local/share/ca-certificates
RUN update-ca-certificates >/dev/null
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo && rustc --version && cargo --version
CONTAINERFILE
    podman build --quiet --network host -t "$rust" "$work/rust" >/dev/null
fi
podman images --filter reference='localhost/diemdanh-base/*'
