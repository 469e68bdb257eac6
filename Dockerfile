# The production image: `vbridge` without the dev tooling (no sandbox, no dev
# server, no bench). It runs as an unprivileged user (65534) and owns its data
# directory, so a named volume mounted there is writable by it (Docker copies
# the directory's owner into a new volume). No Docker engine runs on the
# project's machines: CI validates docker-compose.yml, not this build.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p vbridge --no-default-features

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/vbridge && chown 65534:65534 /var/lib/vbridge
COPY --from=build /src/target/release/vbridge /usr/local/bin/vbridge
COPY config/policy.yaml /etc/vbridge/policy.yaml
ENV VBRIDGE_DATA_DIR=/var/lib/vbridge \
    VBRIDGE_POLICY=/etc/vbridge/policy.yaml
VOLUME /var/lib/vbridge
USER 65534:65534
EXPOSE 8080 9464
CMD ["vbridge", "serve"]
