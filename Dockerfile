# syntax=docker/dockerfile:1
#
# Tern in one image: tern-relay (TURN/STUN) and tern-sidecar (signaling), started together by
# scripts/docker-entrypoint. See docs/OPERATIONS.md.
#
#   docker build -t tern .
#   docker run -d --name tern --network host \
#       -v /etc/tern/turnserver.conf:/etc/tern/turnserver.conf:ro tern
#
# Use --network host. A TURN relay hands clients its own addresses and a range of relay ports
# (min-port..max-port, thousands of them); behind Docker's NAT and port publishing those
# addresses are wrong and publishing a large UDP range costs a proxy process per port. With
# host networking the relay binds the host's addresses as it would outside a container.
#
# Signals reach the relay through tini and the entrypoint (docker kill -s HUP|USR1|USR2 tern);
# docker stop sends SIGTERM to both programs.

ARG RUST_VERSION=1.95

# ---- build ----
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tern-relay -p tern-sidecar \
 && install -D -m 0755 target/release/tern-relay /out/tern-relay \
 && install -D -m 0755 target/release/tern-sidecar /out/tern-sidecar

# ---- run ----
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system tern \
 && useradd --system --gid tern --home-dir /var/lib/tern --shell /usr/sbin/nologin tern \
 && install -d -o tern -g tern -m 0750 /var/lib/tern \
 && install -d -m 0755 /etc/tern
COPY --from=build /out/tern-relay /out/tern-sidecar /usr/local/bin/
COPY scripts/docker-entrypoint /usr/local/bin/tern-entrypoint
COPY conf/turnserver.full.conf docs/OPERATIONS.md /usr/local/share/doc/tern/
USER tern
WORKDIR /var/lib/tern
# Documentation only: with --network host nothing is published. TURN (UDP and TCP), TURN over
# TLS, the sidecar, the Prometheus exporter. The relay range (min-port..max-port) is UDP too.
EXPOSE 3478/udp 3478/tcp 5349/tcp 8080/tcp 9641/tcp
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/tern-entrypoint"]
