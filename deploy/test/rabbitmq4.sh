#!/usr/bin/env bash
# A RabbitMQ 4 broker for the test suites, next to the machine's own (3.x on 5672): the
# `rabbitmq:4.1-management` stand-in of deploy/test/images.sh (RabbitMQ 4.0.5) in a container
# named orderflow-test-rabbitmq4, AMQP on 127.0.0.1:5673 and management on 127.0.0.1:15673,
# user guest/guest. `start` waits until it accepts connections (and fails, never skips, when
# it cannot); `stop` removes it and its data.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=orderflow-test-rabbitmq4
case "${1:-start}" in
    start)
        bash deploy/test/images.sh --no-orderflow
        docker rm -f -v "$NAME" >/dev/null 2>&1 || true
        docker run -d --name "$NAME" --hostname rabbitmq4 \
            -p 127.0.0.1:5673:5672 -p 127.0.0.1:15673:15672 \
            -v "$PWD/deploy/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro" \
            rabbitmq:4.1-management >/dev/null
        deadline=$((SECONDS + 120))
        until docker exec "$NAME" rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; do
            if [ $SECONDS -ge $deadline ]; then
                docker logs --tail 30 "$NAME" >&2
                echo "deploy/test/rabbitmq4: the RabbitMQ 4 broker did not start within 120s" >&2
                exit 1
            fi
            sleep 1
        done
        echo "deploy/test/rabbitmq4: RabbitMQ $(docker exec "$NAME" rabbitmqctl version) on 127.0.0.1:5673" >&2
        ;;
    stop)
        docker rm -f -v "$NAME" >/dev/null 2>&1 || true
        ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
