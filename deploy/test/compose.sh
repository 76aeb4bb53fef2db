#!/usr/bin/env bash
# The compose end-to-end test: deploy/docker-compose.yml as an operator runs it, on a real Docker
# engine with the images of deploy/test/images.sh, every wait under a deadline.
#
#   .env generated → up -d → every service healthy → 300 demo orders through the published
#   port → --scale verification=3 --scale billing=2 → 300 more → `orderflow check` in the ops
#   service → back up, restore into a fresh deployment, `check` there → down -v
#
# It runs in a project of its own (orderflow-ci-<random>) on 127.0.0.1 ports and removes its
# containers, networks and volumes at the end, pass or fail. It prints what it saw (seconds to
# healthy, orders, restarts). Run it alone: `bash deploy/test/compose.sh` (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

log() { printf '\n== compose test: %s\n' "$*" >&2; }
fail() { printf 'compose test FAILED: %s\n' "$*" >&2; exit 1; }

bash deploy/test/images.sh
case "${ORDERFLOW_IMAGE_PROFILE:-release}" in
    dev) ORDERFLOW_BIN=$ROOT/target/debug/orderflow ;;
    *) ORDERFLOW_BIN=$ROOT/target/release/orderflow ;;
esac

WORK=$(mktemp -d)
PROJECT="orderflow-ci-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
RESTORED="$PROJECT-restored"
FIGURES="$WORK/figures"
: > "$FIGURES"
figure() { printf '%-44s %s\n' "$1" "$2" | tee -a "$FIGURES" >&2; }

secret() { head -c24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ADMIN_KEY="admin:ci:$(secret)"
SHOP_KEY="shop:ci-shop:$(secret)"
STAFF_KEY="staff:ci:$(secret)"
make_env() {
    cat <<ENV
ORDERFLOW_API_KEYS=$ADMIN_KEY,$STAFF_KEY,$SHOP_KEY
POSTGRES_PASSWORD=$(secret)
MIGRATOR_DB_PASSWORD=$(secret)
ORDER_INTAKE_DB_PASSWORD=$(secret)
VERIFICATION_DB_PASSWORD=$(secret)
FULFILMENT_DB_PASSWORD=$(secret)
SHIPPING_DB_PASSWORD=$(secret)
BILLING_DB_PASSWORD=$(secret)
RABBITMQ_ADMIN_PASSWORD=$(secret)
RABBITMQ_CONSOLE_PASSWORD=$(secret)
ORDER_INTAKE_AMQP_PASSWORD=$(secret)
VERIFICATION_AMQP_PASSWORD=$(secret)
FULFILMENT_AMQP_PASSWORD=$(secret)
SHIPPING_AMQP_PASSWORD=$(secret)
BILLING_AMQP_PASSWORD=$(secret)
CARRIER_SIM_AMQP_PASSWORD=$(secret)
GRAFANA_ADMIN_PASSWORD=$(secret)
ORDERFLOW_HTTP_PORT=$(free_port)
ENV
}
make_env > "$WORK/env"
make_env > "$WORK/env-restored"

# The demo loads its catalogue and pays invoices over verification's and billing's APIs, which
# the deployment does not publish; this file (test only) publishes them on loopback ports.
cat > "$WORK/test-ports.yml" <<'YML'
services:
  verification:
    ports: ["127.0.0.1::8081"]
  billing:
    ports: ["127.0.0.1::8084"]
YML

compose() { docker compose --project-directory deploy -p "$PROJECT" --env-file "$WORK/env" \
    -f deploy/docker-compose.yml -f "$WORK/test-ports.yml" "$@"; }
compose_restored() { docker compose --project-directory deploy -p "$RESTORED" \
    --env-file "$WORK/env-restored" -f deploy/docker-compose.yml -f "$WORK/test-ports.yml" "$@"; }

cleanup() {
    local rc=$?
    if [ $rc -ne 0 ]; then
        log "failed: the last lines of every container's log"
        for p in "$PROJECT" "$RESTORED"; do
            for c in $(docker ps -aq --filter "label=com.docker.compose.project=$p"); do
                printf -- '--- %s\n' "$(docker inspect --format '{{.Name}} {{.State.Status}} restarts={{.RestartCount}}' "$c")" >&2
                docker logs --tail 15 "$c" 2>&1 | sed 's/^/    /' >&2
            done
        done
    fi
    compose down -v --remove-orphans --timeout 20 >/dev/null 2>&1 || true
    compose_restored down -v --remove-orphans --timeout 20 >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

# Every container of the project that should be running is, and is healthy; the one-shot jobs
# exited 0. Prints what is still missing.
not_healthy() {
    local project=$1
    docker ps -a --filter "label=com.docker.compose.project=$project" \
        --format '{{.Label "com.docker.compose.service"}} {{.State}} {{.Status}}' |
        awk '
            $1 == "broker-definitions" || $1 == "migrate" || $1 == "ops" {
                if (!($2 == "exited" && $0 ~ /Exited \(0\)/)) { print; bad = 1 }; next }
            !($2 == "running" && $0 ~ /\(healthy\)/) { print; bad = 1 }
            END { exit bad ? 0 : 1 }'
}

# Waits for `not_healthy` to be empty; prints the seconds since $3 (a $SECONDS value).
wait_healthy() {
    local project=$1 seconds=$2 since=$3
    local deadline=$((SECONDS + seconds))
    while not_healthy "$project" >"$WORK/waiting"; do
        if [ $SECONDS -ge $deadline ]; then
            cat "$WORK/waiting" >&2
            fail "$project: not every service healthy within ${seconds}s"
        fi
        sleep 1
    done
    echo $((SECONDS - since))
}

restarts() {
    docker ps -a --filter "label=com.docker.compose.project=$1" -q |
        xargs -r docker inspect --format '{{.RestartCount}}' | awk '{ n += $1 } END { print n + 0 }'
}

api_port() { compose port "$1" "$2" | head -n1 | sed 's/.*://'; }

# `orderflow demo` (the host's binary, of the image's profile) against the deployment: orders through
# order-intake's published port, every order waited for until final, under a deadline.
demo() {
    local orders=$1 out="$WORK/demo-$2"
    local intake verification billing
    intake=$(grep ORDERFLOW_HTTP_PORT "$WORK/env" | cut -d= -f2)
    verification=$(api_port verification 8081)
    billing=$(api_port billing 8084)
    ORDERFLOW_API_KEYS=$(grep ORDERFLOW_API_KEYS "$WORK/env" | cut -d= -f2-) \
        timeout 600 "$ORDERFLOW_BIN" demo --orders "$orders" --timeout-secs 540 \
        --intake-url "http://127.0.0.1:$intake" \
        --verification-url "http://127.0.0.1:$verification" \
        --billing-url "http://127.0.0.1:$billing" >"$out" 2>&1 ||
        { cat "$out" >&2; fail "the demo of $orders orders failed"; }
    local completed intended
    completed=$(awk '$1 == "completed" { print $2 }' "$out")
    intended=$(awk '/ended otherwise than intended:/ { print $NF }' "$out")
    [ "$intended" = 0 ] || { cat "$out" >&2; fail "$intended orders ended otherwise than intended"; }
    echo "$completed"
}

check() {
    local out="$WORK/check"
    "$@" run --rm -T ops orderflow check >"$out" 2>&1 || { cat "$out" >&2; fail "orderflow check failed"; }
    grep -q BREACHED "$out" && { cat "$out" >&2; fail "orderflow check reports a breach"; }
    sed 's/^/    /' "$out" >&2
}

log "up -d (project $PROJECT)"
started=$SECONDS
compose up -d --no-build 2>&1 | tail -n 3 >&2
figure "seconds from up -d to every service healthy" "$(wait_healthy "$PROJECT" 240 $started)"
curl -fsS "http://127.0.0.1:$(grep ORDERFLOW_HTTP_PORT "$WORK/env" | cut -d= -f2)/readyz" >/dev/null ||
    fail "order-intake's published port does not answer /readyz"

log "300 demo orders through the published port"
figure "orders completed (of 300, 6 rejected on purpose)" "$(demo 300 first)"

log "--scale verification=3 --scale billing=2"
started=$SECONDS
compose up -d --no-build --scale verification=3 --scale billing=2 2>&1 | tail -n 3 >&2
figure "seconds until the new replicas are healthy" "$(wait_healthy "$PROJECT" 180 $started)"
[ "$(compose ps -q verification | wc -l)" = 3 ] || fail "verification does not run 3 replicas"
[ "$(compose ps -q billing | wc -l)" = 2 ] || fail "billing does not run 2 replicas"
figure "orders completed (of 300 more, scaled)" "$(demo 300 scaled)"

log "orderflow check (ops service)"
check compose

log "back up (pg_dump) and restore into a fresh deployment"
compose exec -T postgres pg_dump -U postgres -Fc orderflow >"$WORK/orderflow.dump"
figure "backup size (bytes)" "$(stat -c %s "$WORK/orderflow.dump")"
compose_restored up -d --no-build postgres 2>&1 | tail -n 3 >&2
deadline=$((SECONDS + 120))
until compose_restored exec -T postgres pg_isready -h 127.0.0.1 -q 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "the restored deployment's PostgreSQL did not come up in 120s"
    sleep 1
done
compose_restored exec -T postgres pg_restore -U postgres -d orderflow --clean --if-exists \
    <"$WORK/orderflow.dump" ||
    fail "pg_restore into the fresh deployment failed"
started=$SECONDS
compose_restored up -d --no-build 2>&1 | tail -n 3 >&2
figure "seconds until the restored deployment is healthy" "$(wait_healthy "$RESTORED" 240 $started)"
for table in order_intake.orders billing.invoices; do
    original=$(compose exec -T postgres psql -U postgres -d orderflow -Atc "SELECT count(*) FROM $table")
    restored=$(compose_restored exec -T postgres psql -U postgres -d orderflow -Atc "SELECT count(*) FROM $table")
    [ "$original" = "$restored" ] || fail "$table: $original rows, $restored after the restore"
    figure "rows of $table, original = restored" "$restored"
done
check compose_restored

figure "container restarts (deployment)" "$(restarts "$PROJECT")"
figure "container restarts (restored deployment)" "$(restarts "$RESTORED")"

log "down -v"
compose down -v --remove-orphans --timeout 20 >/dev/null 2>&1
compose_restored down -v --remove-orphans --timeout 20 >/dev/null 2>&1
left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"; docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"; docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] || fail "down -v left containers, volumes or networks behind: $left"

log "passed"
cat "$FIGURES" >&2
