//! PostgreSQL: one database, one schema per service. A service's pool has `search_path` set to
//! its schema, so its migrations and queries stay in it.
//!
//! Who changes the structure is a setting (`database.migrate`): by default a service creates
//! the database and its schema if missing and runs its migrations at start
//! ([`connect_and_migrate`], also what `orderflow migrate` does). With `migrate = false` (the compose files: only the
//! `migrate` job may change structure) it only checks that its schema is at the migration it was
//! built for ([`check_schema`]): an older schema is waited for (a `migrate` job still running),
//! a newer one or a migration with different SQL is refused at once, saying which.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::DatabaseSettings;
use crate::first_connection::Final;

/// The runtime's own tables (outbox, inbox), created in every service's schema. They keep their
/// own migration history so they never collide with the service's migration versions.
static RUNTIME_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Options for `url`; the error names the setting without printing the password.
pub fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    PgConnectOptions::from_str(url).with_context(|| {
        format!(
            "DATABASE_URL `{}` is not a PostgreSQL URL",
            crate::config::redact_url(url)
        )
    })
}

/// Creates the database named in `options` if it does not exist yet.
pub async fn ensure_database(options: &PgConnectOptions) -> anyhow::Result<()> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .context("connecting to PostgreSQL (is it running? check DATABASE_URL)")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(sqlx::AssertSqlSafe(create.clone()))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another service created it at the same moment.
            Err(e) if is_code(&e, "42P04") || is_code(&e, "23505") => {}
            Err(e) => return Err(e).context(format!("creating database {name}")),
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// Connects a service's pool for `schema` as `database.migrate` says: migrating, or checking
/// the schema's version (retried, like the first connection, within
/// `database.connect_timeout_secs`).
pub async fn connect(
    settings: &DatabaseSettings,
    schema: &str,
    migrator: &Migrator,
) -> anyhow::Result<PgPool> {
    if settings.migrate {
        return connect_and_migrate(settings, schema, migrator).await;
    }
    let options = connect_options(settings.url.expose())?;
    crate::first_connection::retry(
        "PostgreSQL",
        "database.connect_timeout_secs",
        Duration::from_secs(settings.connect_timeout_secs),
        || async {
            let pool = schema_pool(settings, &options, schema).await?;
            match check_schema(&pool, schema, migrator).await {
                Ok(()) => Ok(pool),
                Err(e) => {
                    pool.close().await;
                    Err(e)
                }
            }
        },
    )
    .await
}

fn runtime_migrator() -> Migrator {
    let mut runtime = Migrator {
        migrations: RUNTIME_MIGRATIONS.migrations.clone(),
        ..Migrator::DEFAULT
    };
    runtime.dangerous_set_table_name("_runtime_migrations");
    runtime
}

async fn schema_pool(
    settings: &DatabaseSettings,
    options: &PgConnectOptions,
    schema: &str,
) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone().options([("search_path", schema)]))
        .await
        .context("connecting the database pool")
}

/// Checks that `schema` holds exactly the runtime's and `migrator`'s migrations: an error that
/// says what is missing (retryable: `orderflow migrate` has not run yet), or a [`Final`] one
/// when the schema holds a migration this binary does not know or applied one with other SQL.
pub async fn check_schema(pool: &PgPool, schema: &str, migrator: &Migrator) -> anyhow::Result<()> {
    check_history(pool, schema, &runtime_migrator(), "the runtime's tables").await?;
    check_history(pool, schema, migrator, "its tables").await
}

async fn check_history(
    pool: &PgPool,
    schema: &str,
    migrator: &Migrator,
    what: &str,
) -> anyhow::Result<()> {
    let table = &migrator.table_name;
    let query = format!(
        "SELECT version, description, checksum FROM \"{table}\" WHERE success ORDER BY version"
    );
    let applied: Vec<(i64, String, Vec<u8>)> = match sqlx::query_as(sqlx::AssertSqlSafe(query))
        .fetch_all(pool)
        .await
    {
        Ok(rows) => rows,
        // No history table (or no schema): nothing migrated yet.
        Err(e) if is_code(&e, "42P01") => Vec::new(),
        Err(e) => return Err(e).context(format!("reading {table} in schema {schema}")),
    };
    let expected: Vec<_> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    let built_for = expected.last().map_or(0, |m| m.version);
    if let Some((version, description, _)) = applied
        .iter()
        .find(|(version, ..)| !expected.iter().any(|m| m.version == *version))
    {
        return Err(Final(format!(
            "schema `{schema}` ({what}) holds migration {version} ({description}), newer than \
             this binary, which was built for migration {built_for}: the database was migrated \
             by a newer orderflow; run that version or a newer one"
        ))
        .into());
    }
    for m in &expected {
        if let Some((_, _, checksum)) = applied.iter().find(|(v, ..)| *v == m.version)
            && checksum[..] != m.checksum[..]
        {
            return Err(Final(format!(
                "schema `{schema}` ({what}): migration {} ({}) was applied with other SQL than \
                 this binary holds; the database and this build disagree about it",
                m.version, m.description
            ))
            .into());
        }
    }
    if let Some(missing) = expected
        .iter()
        .find(|m| !applied.iter().any(|(v, ..)| *v == m.version))
    {
        let at = applied.last().map_or_else(
            || "no migration".to_owned(),
            |(v, ..)| format!("migration {v}"),
        );
        anyhow::bail!(
            "schema `{schema}` ({what}) is at {at}, older than this binary, which needs \
             migration {} ({}) up to {built_for}: run `orderflow migrate` of this version \
             (the compose `migrate` job) first",
            missing.version,
            missing.description
        );
    }
    Ok(())
}

/// Connects a pool for `schema`, creating the database and the schema if needed and running
/// the runtime's and the service's migrations.
pub async fn connect_and_migrate(
    settings: &DatabaseSettings,
    schema: &str,
    migrator: &Migrator,
) -> anyhow::Result<PgPool> {
    let options = connect_options(settings.url.expose())?;
    crate::first_connection::retry(
        "PostgreSQL",
        "database.connect_timeout_secs",
        Duration::from_secs(settings.connect_timeout_secs),
        || ensure_database(&options),
    )
    .await?;
    {
        let mut conn = PgConnection::connect_with(&options).await?;
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        match sqlx::query(sqlx::AssertSqlSafe(create.clone()))
            .execute(&mut conn)
            .await
        {
            Ok(_) => {}
            Err(e) if is_code(&e, "23505") || is_code(&e, "42P06") => {}
            Err(e) => return Err(e).context(format!("creating schema {schema}")),
        }
        conn.close().await.ok();
    }
    let pool = schema_pool(settings, &options, schema).await?;
    runtime_migrator()
        .run(&pool)
        .await
        .with_context(|| format!("runtime migrations in schema {schema}"))?;
    migrator
        .run(&pool)
        .await
        .with_context(|| format!("migrations of schema {schema}"))?;
    Ok(pool)
}

/// Whether `error` is a database error with SQLSTATE `code`.
pub fn is_code(error: &sqlx::Error, code: &str) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == code)
}

/// Whether `error` violated the named constraint (to turn it into a 409/422).
pub fn violates(error: &sqlx::Error, constraint: &str) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.constraint())
        .is_some_and(|c| c == constraint)
}
