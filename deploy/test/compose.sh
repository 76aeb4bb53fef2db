#!/usr/bin/env bash
# The compose end-to-end test: deploy/docker-compose.yml as an operator runs it, on a real Docker
# engine with the images of deploy/test/images.sh, every wait under a deadline.
#
#   .env generated → up -d → every service healthy → 300 demo orders through the published
#   port → --scale verification=3 --scale billing=2 → 300 more → `orderflow check` in the ops
#   service → upgrade to a next release (one added migration) with the README's steps while
#   orders flow: none lost or doubled, the broker and PostgreSQL not restarted → back up,
#   restore into a fresh deployment, `check` there → rotate billing's broker and database
#   passwords with the README's steps while orders flow: billing reconnects, nothing else
#   restarts → down -v
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
# `measure LABEL COMMAND…`: runs COMMAND and records its output as a figure. A failure of
# COMMAND fails the test (inside `"$(…)"` as an argument, `fail` would only end the subshell).
measure() {
    local label=$1 value
    shift
    value=$("$@") || exit 1
    figure "$label" "$value"
}

secret() { head -c24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# `first-last` of $1 consecutive free loopback ports.
port_block() {
    python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
while True:
    base = random.randrange(20000, 60000 - n)
    held = []
    try:
        for port in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            held.append(s)
    except OSError:
        continue
    finally:
        for s in held:
            s.close()
    print(f"{base}-{base + n - 1}")
    break
PY
}

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
TEST_VERIFICATION_PORTS=$(port_block 3)
TEST_BILLING_PORTS=$(port_block 2)
ENV
}
make_env > "$WORK/env"
make_env > "$WORK/env-restored"

# The demo loads its catalogue and pays invoices over verification's and billing's APIs, which
# the deployment does not publish; this file (test only) publishes them on loopback ports, one
# block per project with a port for each replica: a replica recreated by an upgrade or a
# rotation takes a port of the block again, so a running demo keeps reaching the service.
cat > "$WORK/test-ports.yml" <<'YML'
services:
  verification:
    ports: ["127.0.0.1:${TEST_VERIFICATION_PORTS:?}:8081"]
  billing:
    ports: ["127.0.0.1:${TEST_BILLING_PORTS:?}:8084"]
YML

COMPOSE=(docker compose --project-directory deploy -p "$PROJECT" --env-file "$WORK/env"
    -f deploy/docker-compose.yml -f "$WORK/test-ports.yml")
compose() { "${COMPOSE[@]}" "$@"; }
compose_restored() { docker compose --project-directory deploy -p "$RESTORED" \
    --env-file "$WORK/env-restored" -f deploy/docker-compose.yml -f "$WORK/test-ports.yml" "$@"; }

cleanup() {
    local rc=$?
    if [ $rc -ne 0 ]; then
        for f in "$WORK"/demo-*; do
            [ -s "$f" ] && { printf -- '--- %s\n' "$(basename "$f")" >&2; tail -n 30 "$f" >&2; }
        done
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
            $1 == "broker-definitions" || $1 == "db-roles" || $1 == "migrate" || $1 == "ops" {
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
    shift 2
    local intake verification billing
    intake=$(grep ORDERFLOW_HTTP_PORT "$WORK/env" | cut -d= -f2)
    verification=$(api_port verification 8081)
    billing=$(api_port billing 8084)
    ORDERFLOW_API_KEYS=$(grep ORDERFLOW_API_KEYS "$WORK/env" | cut -d= -f2-) \
        timeout 600 "$ORDERFLOW_BIN" demo --orders "$orders" --timeout-secs 300 \
        --intake-url "http://127.0.0.1:$intake" \
        --verification-url "http://127.0.0.1:$verification" \
        --billing-url "http://127.0.0.1:$billing" "$@" >"$out" 2>&1 ||
        { cat "$out" >&2; fail "the demo of $orders orders failed"; }
    local completed intended
    completed=$(awk '$1 == "completed" { print $2 }' "$out")
    intended=$(awk '/ended otherwise than intended:/ { print $NF }' "$out")
    [ "$intended" = 0 ] || { cat "$out" >&2; fail "$intended orders ended otherwise than intended"; }
    echo "$completed"
}

# A background demo: a steady flow of orders while something happens; `flow_end` waits for it.
flow_start() {
    local orders=$1 rate=$2 name=$3
    ( demo "$orders" "$name" --rate "$rate" --concurrency 4 >"$WORK/flow-$name" 2>"$WORK/flow-$name.err" ) &
    FLOW_PID=$!
}
# In the main shell (not in `$(…)`, whose subshell cannot wait for the flow); sets COMPLETED.
flow_end() {
    local name=$1
    wait "$FLOW_PID" || { cat "$WORK/flow-$name.err" >&2; fail "the order flow during $name failed"; }
    COMPLETED=$(cat "$WORK/flow-$name")
}

orders_in_db() {
    compose exec -T postgres psql -U postgres -d orderflow -Atc "SELECT count(*) FROM order_intake.orders"
}

# "id started-at restarts" of every long-running container of a service.
containers_of() {
    compose ps -q "$1" | xargs -r docker inspect --format '{{.Id}} {{.State.StartedAt}} {{.RestartCount}}' | sort
}
LONG_RUNNING="rabbitmq postgres order-intake verification fulfilment shipping billing carrier-sim"
snapshot() { for service in $LONG_RUNNING; do printf '%s ' "$service"; containers_of "$service" | tr '\n' ' '; echo; done; }
# The services of snapshot $1 whose containers are not the same, still running, unrestarted.
changed_since() { { diff "$1" <(snapshot) || true; } | sed -n 's/^> \([a-z-]*\) .*/\1/p' | sort -u | tr '\n' ' '; }

check() {
    local out="$WORK/check"
    "$@" run --rm -T ops orderflow check >"$out" 2>&1 || { cat "$out" >&2; fail "orderflow check failed"; }
    grep -q BREACHED "$out" && { cat "$out" >&2; fail "orderflow check reports a breach"; }
    sed 's/^/    /' "$out" >&2
}

docker volume ls -q --filter dangling=true | sort >"$WORK/volumes-before"
log "up -d (project $PROJECT)"
started=$SECONDS
compose up -d --no-build 2>&1 | tail -n 3 >&2
measure "seconds from up -d to every service healthy" wait_healthy "$PROJECT" 240 $started
curl -fsS "http://127.0.0.1:$(grep ORDERFLOW_HTTP_PORT "$WORK/env" | cut -d= -f2)/readyz" >/dev/null ||
    fail "order-intake's published port does not answer /readyz"

log "300 demo orders through the published port"
measure "orders completed (of 300, 6 rejected on purpose)" demo 300 first

log "--scale verification=3 --scale billing=2"
started=$SECONDS
compose up -d --no-build --scale verification=3 --scale billing=2 2>&1 | tail -n 3 >&2
measure "seconds until the new replicas are healthy" wait_healthy "$PROJECT" 180 $started
[ "$(compose ps -q verification | wc -l)" = 3 ] || fail "verification does not run 3 replicas"
[ "$(compose ps -q billing | wc -l)" = 2 ] || fail "billing does not run 2 replicas"
measure "orders completed (of 300 more, scaled)" demo 300 scaled

log "orderflow check (ops service)"
check compose

SCALE=(--scale verification=3 --scale billing=2)

log "upgrade to a next release (orderflow:ci-next, one added migration) while orders flow"
ORDERFLOW_VERSION=ci-next ORDERFLOW_CARGO_FEATURES=order-intake/upgrade-rehearsal \
    bash deploy/test/images.sh >&2
before_orders=$(orders_in_db)
snapshot >"$WORK/before-upgrade"
flow_start 300 10 upgrade
echo "ORDERFLOW_VERSION=ci-next" >>"$WORK/env"
echo "ORDERFLOW_VERSION=ci-next" >>"$WORK/env-restored"
started=$SECONDS
# The README's steps ("Upgrade"), the image being built already.
compose run --rm -T migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; fail "migrate (next release) failed"; }
compose run --rm -T broker-definitions >/dev/null 2>&1 || fail "broker-definitions (next release) failed"
compose exec -T rabbitmq rabbitmqctl -q import_definitions /var/lib/orderflow/broker/definitions.json >&2 ||
    fail "importing the next release's definitions failed"
compose up -d --no-build "${SCALE[@]}" 2>&1 | tail -n 3 >&2
measure "seconds from migrate to every service upgraded" wait_healthy "$PROJECT" 240 $started
for service in order-intake verification fulfilment shipping billing carrier-sim; do
    for c in $(compose ps -q "$service"); do
        image=$(docker inspect --format '{{.Config.Image}}' "$c")
        [ "$image" = orderflow:ci-next ] || fail "$service still runs $image after the upgrade"
    done
done
# The flow really spanned the switch: orders arrived after the new order-intake started.
intake_started=$(docker inspect --format '{{.State.StartedAt}}' "$(compose ps -q order-intake | head -n1)" |
    sed 's/\.[0-9]*Z$/Z/')
flow_end upgrade
figure "orders completed during the upgrade (of 300, 6 rejected on purpose)" "$COMPLETED"
after_switch=$(compose exec -T postgres psql -U postgres -d orderflow -Atc \
    "SELECT count(*) FROM order_intake.orders WHERE created_at > '$intake_started'")
[ "$after_switch" -gt 0 ] || fail "no order arrived after the new order-intake started: the flow did not span the upgrade"
figure "orders placed after the new order-intake started" "$after_switch"
after_orders=$(orders_in_db)
[ $((after_orders - before_orders)) = 300 ] ||
    fail "300 orders placed during the upgrade, $((after_orders - before_orders)) stored"
figure "orders stored during the upgrade (none lost or doubled)" "$((after_orders - before_orders))"
changed=$(changed_since "$WORK/before-upgrade")
for service in rabbitmq postgres; do
    case " $changed " in *" $service "*) fail "the upgrade restarted $service" ;; esac
done
compose exec -T postgres psql -U postgres -d orderflow -Atc \
    "SELECT 1 FROM information_schema.columns WHERE table_schema = 'order_intake' AND column_name = 'upgrade_rehearsal'" |
    grep -qx 1 || fail "the next release's migration is not in the schema"
# The previous release refuses the newer schema, saying so, instead of running on it.
# (Bounded: were it to start, it would run until stopped.)
if ORDERFLOW_VERSION=local timeout 120 "${COMPOSE[@]}" run --rm -T --no-deps order-intake \
    >"$WORK/old-release" 2>&1; then
    fail "the previous release started on the newer schema"
fi
grep -q "newer than this binary" "$WORK/old-release" || { cat "$WORK/old-release" >&2; fail "the previous release did not say why it refused"; }
figure "previous release on the new schema" "refused: newer than this binary"
check compose

log "back up (pg_dump) and restore into a fresh deployment"
compose exec -T postgres pg_dump -U postgres -Fc orderflow >"$WORK/orderflow.dump"
figure "backup size (bytes)" "$(stat -c %s "$WORK/orderflow.dump")"
# The README's steps: PostgreSQL with the roles of this deployment's .env, then the dump.
# (bounded: `run` gives up when PostgreSQL's health check fails for good).
compose_restored run --rm -T db-roles >"$WORK/db-roles.log" 2>&1 ||
    { cat "$WORK/db-roles.log" >&2; fail "db-roles of the restored deployment failed"; }
compose_restored exec -T postgres pg_restore -U postgres -d orderflow --clean --if-exists \
    <"$WORK/orderflow.dump" ||
    fail "pg_restore into the fresh deployment failed"
started=$SECONDS
compose_restored up -d --no-build 2>&1 | tail -n 3 >&2
measure "seconds until the restored deployment is healthy" wait_healthy "$RESTORED" 240 $started
for table in order_intake.orders billing.invoices; do
    original=$(compose exec -T postgres psql -U postgres -d orderflow -Atc "SELECT count(*) FROM $table")
    restored=$(compose_restored exec -T postgres psql -U postgres -d orderflow -Atc "SELECT count(*) FROM $table")
    [ "$original" = "$restored" ] || fail "$table: $original rows, $restored after the restore"
    figure "rows of $table, original = restored" "$restored"
done
check compose_restored

log "rotate billing's broker and database passwords while orders flow"
old_amqp=$(grep '^BILLING_AMQP_PASSWORD=' "$WORK/env" | cut -d= -f2)
old_db=$(grep '^BILLING_DB_PASSWORD=' "$WORK/env" | cut -d= -f2)
new_amqp=$(secret)
new_db=$(secret)
sed -i -e "s/^BILLING_AMQP_PASSWORD=.*/BILLING_AMQP_PASSWORD=$new_amqp/" \
    -e "s/^BILLING_DB_PASSWORD=.*/BILLING_DB_PASSWORD=$new_db/" "$WORK/env"
snapshot >"$WORK/before-rotation"
before_orders=$(orders_in_db)
flow_start 200 10 rotation
started=$SECONDS
# The README's steps ("Rotate credentials").
compose run --rm -T broker-definitions >/dev/null 2>&1 || fail "broker-definitions (rotation) failed"
compose exec -T rabbitmq rabbitmqctl -q import_definitions /var/lib/orderflow/broker/definitions.json >&2 ||
    fail "importing the rotated definitions failed"
compose up -d --no-build "${SCALE[@]}" 2>&1 | tail -n 3 >&2
measure "seconds from rotation to every service healthy" wait_healthy "$PROJECT" 240 $started
flow_end rotation
figure "orders completed during the rotation (of 200, 4 rejected on purpose)" "$COMPLETED"
after_orders=$(orders_in_db)
[ $((after_orders - before_orders)) = 200 ] ||
    fail "200 orders placed during the rotation, $((after_orders - before_orders)) stored"
recreated=$(changed_since "$WORK/before-rotation")
[ "$recreated" = "billing " ] || fail "the rotation recreated or restarted '$recreated', not billing alone"
figure "recreated by the rotation" "$recreated"
# The old passwords are refused as wrong passwords (not for some other reason).
compose exec -T rabbitmq rabbitmqctl -q authenticate_user billing "$old_amqp" >"$WORK/auth" 2>&1 &&
    fail "the broker still accepts billing's old password"
grep -qi "failed to authenticate\|invalid credentials" "$WORK/auth" ||
    { cat "$WORK/auth" >&2; fail "the broker refused billing's old password for another reason"; }
compose exec -T rabbitmq rabbitmqctl -q authenticate_user billing "$new_amqp" >/dev/null 2>&1 ||
    fail "the broker does not accept billing's new password"
compose run --rm -T --no-deps -e PGUSER=billing -e PGPASSWORD="$old_db" db-roles \
    psql -Atc "SELECT 1" >"$WORK/auth" 2>&1 && fail "PostgreSQL still accepts billing's old password"
grep -q "password authentication failed" "$WORK/auth" ||
    { cat "$WORK/auth" >&2; fail "PostgreSQL refused billing's old password for another reason"; }
compose run --rm -T --no-deps -e PGUSER=billing -e PGPASSWORD="$new_db" db-roles \
    psql -Atc "SELECT 1" >/dev/null 2>&1 || fail "PostgreSQL does not accept billing's new password"
check compose

measure "container restarts (deployment)" restarts "$PROJECT"
measure "container restarts (restored deployment)" restarts "$RESTORED"

log "down -v"
compose down -v --remove-orphans --timeout 20 >/dev/null 2>&1
compose_restored down -v --remove-orphans --timeout 20 >/dev/null 2>&1
left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"; docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"; docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] || fail "down -v left containers, volumes or networks behind: $left"
# Anonymous volumes carry no project label: none may be left that was not there before.
leaked=$(comm -13 "$WORK/volumes-before" <(docker volume ls -q --filter dangling=true | sort))
[ -z "$leaked" ] || fail "the deployment left anonymous volumes behind: $leaked"

log "passed"
cat "$FIGURES" >&2
