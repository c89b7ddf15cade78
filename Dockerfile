# Lightweight Harpoon service: no Python, no local engine. Inference comes from
# configured remote engines (hosted·ai or any OpenAI-compatible server).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY crates ./crates
RUN cargo build --release --locked -p service \
 && cp target/release/service /usr/local/bin/service

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/harpoon harpoon \
 && install -d -o harpoon -g harpoon /var/lib/harpoon
COPY --from=build /usr/local/bin/service /usr/local/bin/service
COPY configs/config.example.yaml /etc/harpoon/config.example.yaml

# Listen on every interface inside the container. SERVICE_PORT is left unset so
# a platform's PORT (Railway) takes effect; without either the port is 8080.
# API keys are required (as on any non-loopback bind); the SQLite file lives in
# /var/lib/harpoon (mount a volume there), or set DATABASE_URL for PostgreSQL.
ENV SERVICE_HOST=0.0.0.0 \
    HARPOON__SERVICE__LOG_FORMAT=json \
    HARPOON__AUTH__MODE=required \
    HARPOON__STORAGE__DATA_DIR=/var/lib/harpoon
# Every client connection costs a file descriptor. The service raises its soft
# open-file limit to the hard one at start and caps connections at half of it
# (service.max_connections); give it room with
#   docker run --ulimit nofile=65536:65536 …
# (Docker's default hard limit is usually 1048576; a host whose hard limit is
# 1024 caps the service at 512 connections, logged at start.)
VOLUME /var/lib/harpoon
USER harpoon
WORKDIR /home/harpoon
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${SERVICE_PORT:-${PORT:-8080}}/health" >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/service"]
