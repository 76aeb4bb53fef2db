//! `database.migrate = false`: a service that may not change structure (the compose files' roles)
//! checks that its schema is at the migration it was built for. It waits for a `migrate` job that
//! has not run yet, and refuses at once a schema migrated by a newer build or with other SQL,
//! saying which; on the real database.

use std::time::Duration;

use orderflow_runtime::config::DatabaseSettings;
use orderflow_runtime::database;
use orderflow_runtime::testing::TestEnv;
use sqlx::migrate::Migrator;

static MIGRATOR: Migrator = sqlx::migrate!("./tests/migrations");
const SCHEMA: &str = "recorder";

fn checking(env: &TestEnv, wait_secs: u64) -> DatabaseSettings {
    let mut settings = env.settings.database.clone();
    settings.migrate = false;
    settings.connect_timeout_secs = wait_secs;
    settings
}

async fn migrated(env: &TestEnv) {
    database::connect_and_migrate(&env.settings.database, SCHEMA, &MIGRATOR)
        .await
        .expect("migrate")
        .close()
        .await;
}

#[tokio::test]
async fn an_unmigrated_schema_is_refused_with_the_command_that_fixes_it() {
    let env = TestEnv::new();
    let options = database::connect_options(env.settings.database.url.expose()).expect("url");
    database::ensure_database(&options).await.expect("database");

    let error = database::connect(&checking(&env, 0), SCHEMA, &MIGRATOR)
        .await
        .expect_err("nothing migrated yet");
    let text = format!("{error:#}");
    assert!(text.contains("is at no migration"), "{text}");
    assert!(text.contains("orderflow migrate"), "{text}");

    migrated(&env).await;
    database::connect(&checking(&env, 0), SCHEMA, &MIGRATOR)
        .await
        .expect("the schema is at the binary's migration")
        .close()
        .await;
}

#[tokio::test]
async fn a_service_started_before_the_migrate_job_waits_for_it() {
    let env = TestEnv::new();
    let settings = checking(&env, 60);
    let waiting = tokio::spawn(async move {
        database::connect(&settings, SCHEMA, &MIGRATOR)
            .await
            .map(drop)
    });
    migrated(&env).await;
    tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("connected within its wait")
        .expect("join")
        .expect("started once the schema was migrated");
}

#[tokio::test]
async fn a_schema_migrated_by_a_newer_build_is_refused_at_once() {
    let env = TestEnv::new();
    migrated(&env).await;
    let pool = env.pool(SCHEMA).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (90001, 'added later', true, '\\x00', 1)",
    )
    .execute(&pool)
    .await
    .expect("a newer migration");

    let error = database::connect(&checking(&env, 60), SCHEMA, &MIGRATOR)
        .await
        .expect_err("newer schema");
    let text = format!("{error:#}");
    assert!(
        text.contains("holds migration 90001 (added later), newer than this binary"),
        "{text}"
    );
    assert!(!text.contains("gave up after"), "not waited for: {text}");

    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 90001")
        .execute(&pool)
        .await
        .expect("delete");
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = 1")
        .execute(&pool)
        .await
        .expect("other SQL");
    let error = database::connect(&checking(&env, 60), SCHEMA, &MIGRATOR)
        .await
        .expect_err("migration 1 differs");
    let text = format!("{error:#}");
    assert!(
        text.contains("migration 1 (handled) was applied with other SQL"),
        "{text}"
    );
    pool.close().await;
}
