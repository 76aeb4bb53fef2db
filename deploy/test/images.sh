#!/usr/bin/env bash
# Makes this machine able to run orderflow's compose files without a container registry:
# installs Debian's Docker engine (and debootstrap) if missing, starts `dockerd` if it is not
# running, installs the Compose v2 CLI plugin, and builds the images the compose files name:
#
#   orderflow-ci/debian:trixie   a minimal Debian trixie from debootstrap (the local base)
#   rabbitmq:4.1-management      stand-in from trixie's rabbitmq-server 4.0.5 (deploy/images/rabbitmq)
#   postgres:17                  stand-in from trixie's postgresql-17 (deploy/images/postgres)
#   orderflow:${ORDERFLOW_VERSION:-local}
#                                the workspace's binaries on the local base (deploy/images/orderflow)
#
# deploy/images/README.md says what each stand-in implements. Idempotent and quick when all is
# there: an image is rebuilt only when its recipe (or, for orderflow, a binary) changed.
# ORDERFLOW_CARGO_FEATURES builds the orderflow image's binaries with those cargo features (the
# compose test's "next release", `order-intake/upgrade-rehearsal`), then builds the workspace's
# binaries again without them, so target/ holds the normal ones afterwards.
# Usage: bash deploy/test/images.sh [--no-orderflow]
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf 'deploy/images: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

CACHE=${ORDERFLOW_IMAGE_CACHE:-/var/cache/orderflow-ci}
BASE=orderflow-ci/debian:trixie
export DOCKER_BUILDKIT=0 # the classic builder: no frontend image to pull, works on engine 20.10

wait_until() {
    local what=$1 seconds=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            log "$what not ready within ${seconds}s"
            return 1
        fi
        sleep 1
    done
}

ensure_engine() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} from Debian's packages"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! docker info >/dev/null 2>&1; then
        log "starting dockerd (log: /var/log/orderflow-dockerd.log)"
        as_root setsid dockerd >/var/log/orderflow-dockerd.log 2>&1 < /dev/null &
        wait_until "the Docker engine" 60 docker info
    fi
    log "Docker engine $(docker version --format '{{.Server.Version}}')"
}

# Builds `$tag` from `$dir` unless the image carries the same recipe label already.
build_if_changed() {
    local tag=$1 dir=$2 recipe=$3
    if [ "$(docker image inspect --format '{{index .Config.Labels "orderflow.recipe"}}' "$tag" 2>/dev/null)" = "$recipe" ]; then
        log "$tag is up to date"
        return
    fi
    log "building $tag"
    docker build -q --label "orderflow.recipe=$recipe" --build-arg "BASE_IMAGE=$BASE" -t "$tag" "$dir" >/dev/null
}

recipe_of() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16; }

ensure_base() {
    if docker image inspect "$BASE" >/dev/null 2>&1; then
        return
    fi
    local root="$CACHE/rootfs-trixie"
    if [ ! -f "$CACHE/rootfs-trixie.done" ]; then
        log "debootstrap --variant=minbase trixie (about a minute)"
        as_root rm -rf "$root"
        as_root mkdir -p "$CACHE"
        as_root debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 ||
            { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
        as_root touch "$CACHE/rootfs-trixie.done"
    fi
    log "importing $BASE"
    as_root tar -C "$root" -c . | docker import - "$BASE" >/dev/null
}

# Compose v2 from Debian trixie's docker-compose package, installed as a CLI plugin.
ensure_compose() {
    if docker compose version >/dev/null 2>&1; then
        log "$(docker compose version)"
        return
    fi
    log "installing the Compose v2 plugin from Debian trixie's docker-compose"
    local dir
    dir=$(mktemp -d)
    printf 'FROM %s\nRUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null\n' \
        "$BASE" > "$dir/Dockerfile"
    docker build -q -t orderflow-ci/compose "$dir" >/dev/null
    local cid
    cid=$(docker create orderflow-ci/compose true)
    as_root mkdir -p /usr/local/lib/docker/cli-plugins
    docker cp "$cid:/usr/libexec/docker/cli-plugins/docker-compose" "$dir/docker-compose"
    docker rm "$cid" >/dev/null
    as_root install -m 0755 "$dir/docker-compose" /usr/local/lib/docker/cli-plugins/docker-compose
    rm -rf "$dir"
    log "$(docker compose version)"
}

# The binaries the root Dockerfile copies into its image, built here with the cargo profile
# ORDERFLOW_IMAGE_PROFILE: `release` (the default, as the Dockerfile builds them) or `dev`
# (the test command's choice: the binaries `cargo test` has just built, so no second build).
ensure_orderflow() {
    local tag="orderflow:${ORDERFLOW_VERSION:-local}"
    local profile=${ORDERFLOW_IMAGE_PROFILE:-release} dir bins
    case "$profile" in
        release) dir=release ;;
        dev) dir=debug ;;
        *) log "ORDERFLOW_IMAGE_PROFILE must be release or dev, not '$profile'"; exit 2 ;;
    esac
    bins=$(sed -n 's|.*/src/target/release/\([a-z-]*\).*|\1|p' Dockerfile)
    local features=${ORDERFLOW_CARGO_FEATURES:-}
    log "cargo build --profile $profile ${features:+--features $features }(the image's binaries)"
    cargo build --profile "$profile" --locked --workspace --bins --quiet ${features:+--features "$features"}
    local ctx
    ctx=$(mktemp -d)
    mkdir "$ctx/bin"
    for bin in $bins; do cp "target/$dir/$bin" "$ctx/bin/"; done
    if [ -n "$features" ]; then
        cargo build --profile "$profile" --locked --workspace --bins --quiet
    fi
    cp deploy/images/orderflow/Dockerfile "$ctx/"
    build_if_changed "$tag" "$ctx" "$(recipe_of "$ctx")"
    rm -rf "$ctx"
}

ensure_engine
ensure_base
ensure_compose
build_if_changed rabbitmq:4.1-management deploy/images/rabbitmq "$(recipe_of deploy/images/rabbitmq)"
build_if_changed postgres:17 deploy/images/postgres "$(recipe_of deploy/images/postgres)"
if [ "${1:-}" != --no-orderflow ]; then
    ensure_orderflow
fi
