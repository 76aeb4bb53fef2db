//! Warehouses: the places stock is kept and orders are sent from.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

/// A warehouse code: 1–32 characters of `A-Z a-z 0-9 - _`, as it appears in reservations,
/// parcel groups and routing. The only way in is [`WarehouseCode::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WarehouseCode(String);

impl WarehouseCode {
    pub fn parse(raw: &str) -> Result<WarehouseCode, String> {
        let valid = !raw.is_empty()
            && raw.len() <= 32
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(WarehouseCode(raw.to_owned()))
        } else {
            Err(format!(
                "`{raw}` is not a warehouse code (1-32 of A-Z, a-z, 0-9, '-', '_')"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct Warehouse {
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates or renames the warehouse; `true` when it was created.
pub async fn put(
    db: impl PgExecutor<'_>,
    code: &WarehouseCode,
    name: &str,
) -> anyhow::Result<(Warehouse, bool)> {
    let (code, name, created_at, updated_at, created) = sqlx::query_as(
        "INSERT INTO warehouses (code, name) VALUES ($1, $2) \
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, updated_at = now() \
         RETURNING code, name, created_at, updated_at, (xmax = 0)",
    )
    .bind(code.as_str())
    .bind(name)
    .fetch_one(db)
    .await
    .context("storing a warehouse")?;
    Ok((
        Warehouse {
            code,
            name,
            created_at,
            updated_at,
        },
        created,
    ))
}

/// Every warehouse, by code.
pub async fn list(db: impl PgExecutor<'_>) -> anyhow::Result<Vec<Warehouse>> {
    sqlx::query_as("SELECT code, name, created_at, updated_at FROM warehouses ORDER BY code")
        .fetch_all(db)
        .await
        .context("listing warehouses")
}

pub async fn exists(db: impl PgExecutor<'_>, code: &str) -> anyhow::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM warehouses WHERE code = $1)")
        .bind(code)
        .fetch_one(db)
        .await
        .context("looking up a warehouse")
}
