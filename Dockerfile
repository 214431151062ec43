# syntax=docker/dockerfile:1
# The base images: Docker Hub's by default; tests/image/bases.sh makes local stand-ins from
# Debian's packages for machines that cannot reach Docker Hub (see docs/image.md).
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

# Build stage: compiles the release binary (SQLite is bundled; PostgreSQL uses libpq).
FROM ${RUST_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
# Cargo.toml names the test and benchmark targets: cargo reads them even to build only the binary.
COPY tests ./tests
COPY benches ./benches
# The web apps' files, embedded in the binary.
COPY web ./web
RUN cargo build --release --locked --bin diemdanh

# Runtime stage: a small Debian with libpq and curl for the health check, running as non-root.
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin diemdanh \
    && mkdir -p /data && chown diemdanh:diemdanh /data
COPY --from=build /src/target/release/diemdanh /usr/local/bin/diemdanh
USER diemdanh
ENV DIEMDANH_DATA_DIR=/data \
    DIEMDANH_BIND=0.0.0.0:8080 \
    DIEMDANH_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["diemdanh"]
CMD ["serve"]
