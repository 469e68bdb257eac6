# Image for `vbridge serve`, without the dev tooling (the deployment issue
# completes and tests it; no
# Docker engine runs on the project's machines, so it is not built in CI).
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p vbridge --no-default-features

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/vbridge /usr/local/bin/vbridge
USER 65534
CMD ["vbridge", "serve"]
