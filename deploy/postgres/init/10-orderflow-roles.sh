#!/usr/bin/env bash
# Roles and schemas for orderflow, run once by the postgres image when its volume is first
# initialised (/docker-entrypoint-initdb.d). One database; one schema per service.
#
# - `orderflow_migrator` owns every schema and runs the migrations (the `migrate` job): the only
#   role that changes table structure.
# - each service has a login role named after its schema that may read and write the tables of
#   its own schema and nothing else (no other schema, no `public`). It also holds CREATE on its
#   schema and on the database because a service checks both at start (`CREATE SCHEMA/TABLE IF
#   NOT EXISTS` before it runs migrations); the schemas exist already, so that adds nothing.
#
# Passwords come from the container's environment (see deploy/.env.example); rotate them with
# `ALTER ROLE … PASSWORD` (README, "Operations").
set -euo pipefail

: "${POSTGRES_DB:?}" "${MIGRATOR_DB_PASSWORD:?}" "${ORDER_INTAKE_DB_PASSWORD:?}" \
  "${VERIFICATION_DB_PASSWORD:?}" "${FULFILMENT_DB_PASSWORD:?}" "${SHIPPING_DB_PASSWORD:?}" \
  "${BILLING_DB_PASSWORD:?}"

service_role() {
    local role=$1 password=$2
    cat <<SQL
CREATE ROLE ${role} LOGIN PASSWORD '${password//\'/\'\'}';
CREATE SCHEMA ${role} AUTHORIZATION orderflow_migrator;
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE "${POSTGRES_DB}" TO ${role};
GRANT USAGE, CREATE ON SCHEMA ${role} TO ${role};
ALTER DEFAULT PRIVILEGES FOR ROLE orderflow_migrator IN SCHEMA ${role}
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role};
ALTER DEFAULT PRIVILEGES FOR ROLE orderflow_migrator IN SCHEMA ${role}
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${role};
ALTER DEFAULT PRIVILEGES FOR ROLE orderflow_migrator IN SCHEMA ${role}
    GRANT EXECUTE ON FUNCTIONS TO ${role};
SQL
}

{
    cat <<SQL
\set ON_ERROR_STOP on
BEGIN;
REVOKE ALL ON DATABASE "${POSTGRES_DB}" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE ROLE orderflow_migrator LOGIN PASSWORD '${MIGRATOR_DB_PASSWORD//\'/\'\'}';
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE "${POSTGRES_DB}" TO orderflow_migrator;
SQL
    service_role order_intake "$ORDER_INTAKE_DB_PASSWORD"
    service_role verification "$VERIFICATION_DB_PASSWORD"
    service_role fulfilment "$FULFILMENT_DB_PASSWORD"
    service_role shipping "$SHIPPING_DB_PASSWORD"
    service_role billing "$BILLING_DB_PASSWORD"
    echo "COMMIT;"
} | psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" \
    --dbname "$POSTGRES_DB"
echo "orderflow: roles and schemas created in ${POSTGRES_DB}"
