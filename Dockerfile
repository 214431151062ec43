# syntax=docker/dockerfile:1
# Build stage: compiles the release binary (SQLite is bundled; PostgreSQL uses libpq).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
# The web apps' files, embedded in the binary.
COPY web ./web
RUN cargo build --release --locked --bin diemdanh

# Runtime stage: a small Debian with libpq and curl for the health check, running as non-root.
FROM debian:bookworm-slim
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
