#!/usr/bin/env bash
# Starts RabbitMQ and PostgreSQL from Debian's packages on a machine without Docker, installing
# them first if they are missing. Idempotent: running it again on a machine where both are up
# changes nothing. Leaves PostgreSQL reachable at 127.0.0.1:5432 as user `postgres` (trust auth,
# for development and CI only) and RabbitMQ at 127.0.0.1:5672 as guest/guest.
set -euo pipefail

log() { printf 'deploy/local: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
    local missing=()
    command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
    [ -n "$(ls /etc/postgresql 2>/dev/null)" ] || missing+=(postgresql)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} from Debian's packages"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

wait_for() {
    local what=$1 seconds=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            log "$what did not come up within ${seconds}s"
            return 1
        fi
        sleep 1
    done
    log "$what is up"
}

postgres_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
postgres_trusts_us() { psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT 1" -w >/dev/null 2>&1; }
rabbitmq_up() { rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; }

start_postgres() {
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    if ! postgres_up; then
        log "starting PostgreSQL $version"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    wait_for PostgreSQL 60 postgres_up
    if ! postgres_trusts_us; then
        # A fresh Debian cluster asks for passwords over TCP; CI and development use trust on
        # loopback only.
        local hba="/etc/postgresql/$version/main/pg_hba.conf"
        log "allowing trust authentication on 127.0.0.1 in $hba"
        as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
        wait_for "PostgreSQL (trust auth)" 30 postgres_trusts_us
    fi
}

start_rabbitmq() {
    if ! rabbitmq_up; then
        log "starting RabbitMQ"
        as_root rabbitmq-server -detached || true
    fi
    wait_for RabbitMQ 120 rabbitmq_up
}

# The ops console reads queue depths and rates from RabbitMQ's management API (port 15672).
enable_management() {
    if ! rabbitmq-plugins is_enabled rabbitmq_management -q >/dev/null 2>&1; then
        log "enabling the rabbitmq_management plugin"
        as_root rabbitmq-plugins enable rabbitmq_management >/dev/null
    fi
    wait_for "RabbitMQ management API" 60 rabbitmq-diagnostics -q check_port_listener 15672
}

install_missing
start_postgres
start_rabbitmq
enable_management
