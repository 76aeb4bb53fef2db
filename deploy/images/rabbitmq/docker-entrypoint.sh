#!/bin/sh
# The official image's start-up, the parts orderflow's compose files rely on: the Erlang cookie
# from RABBITMQ_ERLANG_COOKIE (every node of a cluster the same), the node named after the
# hostname, config from /etc/rabbitmq/conf.d and plugins from /etc/rabbitmq/enabled_plugins.
set -eu

if [ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]; then
    cookie="$HOME/.erlang.cookie"
    if [ ! -f "$cookie" ] || [ "$(cat "$cookie")" != "$RABBITMQ_ERLANG_COOKIE" ]; then
        rm -f "$cookie"
        printf '%s' "$RABBITMQ_ERLANG_COOKIE" > "$cookie"
        chmod 600 "$cookie"
    fi
fi

if [ "${1:-}" = rabbitmq-server ]; then
    export RABBITMQ_NODENAME="${RABBITMQ_NODENAME:-rabbit@$(hostname)}"
    exec /usr/lib/rabbitmq/bin/rabbitmq-server
fi
exec "$@"
