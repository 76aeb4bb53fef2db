#!/usr/bin/env bash
# Roles and schemas for orderflow, applied by the `db-roles` job on every `docker compose up`
# (it runs in the postgres image, connecting to the `postgres` service as its superuser). One
# database; one schema per service. Idempotent: what exists is kept, what is missing is created,
# and every role's password is set to the one in .env — so rotating a database password is
# changing it in .env and `docker compose up -d` (README, "Rotate credentials"); the database
# container itself holds no service's password and is never recreated for one.
#
# - `orderflow_migrator` owns every schema and runs the migrations (the `migrate` job): the only
#   role that changes structure.
# - each service has a login role named after its schema that may read and write the rows of
#   its own schema and nothing else: no CREATE on the database or any schema, no other schema,
#   no `public`. Services run with `database.migrate = false`, so they only check that the
#   schema is at the migration they were built for.
set -euo pipefail

: "${PGDATABASE:?}" "${MIGRATOR_DB_PASSWORD:?}" "${ORDER_INTAKE_DB_PASSWORD:?}" \
  "${VERIFICATION_DB_PASSWORD:?}" "${FULFILMENT_DB_PASSWORD:?}" "${SHIPPING_DB_PASSWORD:?}" \
  "${BILLING_DB_PASSWORD:?}"

# A login role with the password in environment variable `$2`, read by psql itself (`\getenv`,
# then quoted by psql, never by the shell): no password on a command line.
login_role() {
    local role=$1 variable=$2
    cat <<SQL
\getenv password ${variable}
SELECT format('CREATE ROLE %I', '${role}')
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') \gexec
ALTER ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SQL
}

service_role() {
    local role=$1 variable=$2
    login_role "$role" "$variable"
    cat <<SQL
CREATE SCHEMA IF NOT EXISTS ${role} AUTHORIZATION orderflow_migrator;
REVOKE ALL ON DATABASE "${PGDATABASE}" FROM ${role};
GRANT CONNECT, TEMPORARY ON DATABASE "${PGDATABASE}" TO ${role};
REVOKE ALL ON SCHEMA ${role} FROM ${role};
GRANT USAGE ON SCHEMA ${role} TO ${role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${role} TO ${role};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${role} TO ${role};
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${role} TO ${role};
ALTER DEFAULT PRIVILEGES FOR ROLE orderflow_migrator IN SCHEMA ${role}
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role};
ALTER DEFAULT PRIVILEGES FOR ROLE orderflow_migrator IN SCHEMA ${role}
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${role};
ALTER DEFAULT PRIVILEGES FOR ROLE orderflow_migrator IN SCHEMA ${role}
    GRANT EXECUTE ON FUNCTIONS TO ${role};
SQL
}

{
    echo "BEGIN;"
    echo "REVOKE ALL ON DATABASE \"${PGDATABASE}\" FROM PUBLIC;"
    echo "REVOKE ALL ON SCHEMA public FROM PUBLIC;"
    login_role orderflow_migrator MIGRATOR_DB_PASSWORD
    echo "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE \"${PGDATABASE}\" TO orderflow_migrator;"
    service_role order_intake ORDER_INTAKE_DB_PASSWORD
    service_role verification VERIFICATION_DB_PASSWORD
    service_role fulfilment FULFILMENT_DB_PASSWORD
    service_role shipping SHIPPING_DB_PASSWORD
    service_role billing BILLING_DB_PASSWORD
    echo "COMMIT;"
} | psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet
echo "orderflow: roles, schemas and passwords of ${PGDATABASE} are as .env says"
