#!/usr/bin/env bash
# The README's test command: everything the tests need, installed and started if missing, then
# every suite. On a fresh Debian machine (as root, or with sudo) it installs and starts
# RabbitMQ and PostgreSQL (deploy/local/start.sh), Chromium and the console test's npm packages,
# the Docker engine, Compose and the images of the deploy test (deploy/test/images.sh); on a
# machine where all of that is there it starts nothing twice and rebuilds nothing unchanged.
# The broker-facing suites run on the machine's RabbitMQ (3.x) and again on RabbitMQ 4.
#
#   bash deploy/test/run.sh              # cargo tests, then the compose end-to-end test
#   ORDERFLOW_SKIP_COMPOSE=1 bash deploy/test/run.sh   # the cargo tests only
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

bash deploy/local/start.sh

# The console's browser test (tests/tests/console.rs): Debian's chromium, never a downloaded
# browser, and playwright-core from the lock file.
# Only what is missing: a machine's own Node.js (e.g. NodeSource's, which bundles npm) conflicts
# with Debian's npm package.
browser_packages=()
command -v chromium >/dev/null 2>&1 || browser_packages+=(chromium)
command -v npm >/dev/null 2>&1 || browser_packages+=(nodejs npm)
if [ ${#browser_packages[@]} -gt 0 ]; then
    echo "== installing ${browser_packages[*]} for the console test"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${browser_packages[@]}" >/dev/null
fi
if [ ! -d tests/console/node_modules/playwright-core ] ||
    [ tests/console/package-lock.json -nt tests/console/node_modules/.package-lock.json ]; then
    (cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
fi

# The carrier adapter written from the guide in Python (services/shipping/adapters/python) needs
# pika; its test is ignored by a plain `cargo test` and run here on purpose.
if ! python3 -c 'import pika' >/dev/null 2>&1; then
    echo "== installing pika for the Python carrier adapter"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pika
fi

echo "== cargo tests (RabbitMQ $(rabbitmqctl version 2>/dev/null || echo 3.x) on 127.0.0.1:5672)"
cargo test --workspace --locked
cargo test --locked -p shipping --test shipping -- --ignored python_adapter

# The broker-facing suites again on RabbitMQ 4 (deploy/test/rabbitmq4.sh): the runtime's
# reliability tests (outbox, inbox, consumer, dead-lettering), the dead-letter tools, the
# console's broker user, the carrier protocol and adapters, and one chaos run (a shorter one:
# the long run is on 3.x above).
echo "== the broker suites on RabbitMQ 4"
bash deploy/test/rabbitmq4.sh start
trap 'bash deploy/test/rabbitmq4.sh stop' EXIT
export AMQP_URL='amqp://guest:guest@127.0.0.1:5673/%2f'
export RABBITMQ_MANAGEMENT_URL='http://127.0.0.1:15673'
export RABBITMQCTL='docker exec orderflow-test-rabbitmq4 rabbitmqctl'
cargo test --locked -p orderflow-runtime --test reliability \
    -p orderflow --test dlq --test console_user
cargo test --locked -p shipping --test shipping -- --include-ignored adapter carrier_replies
ORDERFLOW_CHAOS_ORDERS=${ORDERFLOW_CHAOS_ORDERS_RABBITMQ4:-600} cargo test --locked -p orderflow --test chaos
unset AMQP_URL RABBITMQ_MANAGEMENT_URL RABBITMQCTL
bash deploy/test/rabbitmq4.sh stop
trap - EXIT

if [ "${ORDERFLOW_SKIP_COMPOSE:-0}" != 1 ]; then
    echo "== compose end-to-end test"
    # The image takes the binaries `cargo test` has just built (dev profile): no second build.
    ORDERFLOW_IMAGE_PROFILE=${ORDERFLOW_IMAGE_PROFILE:-dev} bash deploy/test/compose.sh
fi
