# syntax=docker/dockerfile:1
#
# One image with every orderflow binary: the five services, the simulated carrier and the
# operator's `orderflow` (migrations, broker definitions, demo). Compose picks the binary with
# `command:`. Build from the repository root: `docker build -t orderflow .` (deploy/ does it
# for you with `docker compose build`).
#
# Stages: `chef` (toolchain + cargo-chef) → `planner` (the dependency recipe) → `build`
# (dependencies compiled in their own layer, rebuilt only when Cargo.toml/Cargo.lock change,
# then the workspace in release mode) → a distroless runtime: glibc and CA certificates, no
# shell, no package manager, running as the unprivileged `nonroot` user (uid 65532).
# Health checks are a subcommand of each binary (`order-intake healthcheck`), so nothing else is
# needed in the image.

# The two base images are build arguments whose defaults are the official ones; a registry
# mirror or a locally built stand-in replaces them with `--build-arg`.
ARG RUST_IMAGE=rust:1.95-slim-trixie
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian13:nonroot

FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --workspace --bins \
    # The broker definitions volume is created from this directory, owned by the runtime user.
    && mkdir -p /out/broker

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="orderflow" \
      org.opencontainers.image.description="Order processing: intake, verification, fulfilment, shipping, billing" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build \
    /src/target/release/order-intake \
    /src/target/release/verification \
    /src/target/release/fulfilment \
    /src/target/release/shipping \
    /src/target/release/carrier-sim \
    /src/target/release/billing \
    /src/target/release/orderflow \
    /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/broker /var/lib/orderflow/broker
USER 65532:65532
EXPOSE 8080 8081 8082 8083 8084
CMD ["orderflow", "--help"]
