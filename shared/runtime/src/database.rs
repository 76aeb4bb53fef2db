//! PostgreSQL: one database, one schema per service. The database is created if missing; a
//! service's pool has `search_path` set to its schema, so its migrations and queries stay in it.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::DatabaseSettings;

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
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.options([("search_path", schema)]))
        .await
        .context("connecting the database pool")?;

    let mut runtime = Migrator {
        migrations: RUNTIME_MIGRATIONS.migrations.clone(),
        ..Migrator::DEFAULT
    };
    runtime.dangerous_set_table_name("_runtime_migrations");
    runtime
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
