//! What the warehouse API shows: pick lists with their lines, tasks and parcels, and tasks.

use std::collections::BTreeMap;

use orderflow_messages::order::ParcelLine;
use orderflow_messages::types::{Dimensions, Sku};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::openapi::ParcelLineSchema;
use crate::pick_list::PickLine;
use orderflow_runtime::openapi::DimensionsSchema;

/// A customisation or assembly task of a pick line.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    pub pick_list_id: Uuid,
    pub order_id: Uuid,
    pub warehouse: String,
    pub line_no: i32,
    pub sku: String,
    pub customisation: String,
    /// `open`, `done` or `cancelled`.
    pub status: String,
    pub completed_by: Option<String>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub const TASK_COLUMNS: &str = "id, pick_list_id, order_id, warehouse, line_no, sku, \
     customisation, status, completed_by, completed_at, created_at";

/// A pick list: the lines one warehouse picks for an order, their tasks and the parcels closed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PickListView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub warehouse: String,
    /// `open`, `picked`, `packed`, `short` or `cancelled`.
    pub status: String,
    /// `automatic` or `manual`.
    pub mode: String,
    /// Short-picked and waiting for stock to be reallocated by verification.
    pub awaiting_reallocation: bool,
    pub lines: Vec<PickLineView>,
    pub tasks: Vec<TaskView>,
    pub parcels: Vec<ParcelView>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One line to pick: reserved, found, and packed so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct PickLineView {
    pub line_no: u32,
    #[schema(value_type = String)]
    pub sku: Sku,
    pub name: String,
    /// Units reserved in this warehouse.
    pub quantity: u32,
    /// Units found, once the pick is confirmed.
    pub picked: Option<u32>,
    /// Units in closed parcels.
    pub packed: u32,
    pub weight_grams: u32,
    #[schema(value_type = Option<DimensionsSchema>)]
    pub dimensions: Option<Dimensions>,
    pub customisations: Vec<String>,
}

/// A parcel of a pick list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParcelView {
    pub parcel_id: Uuid,
    pub weight_grams: i32,
    #[schema(value_type = DimensionsSchema)]
    pub dimensions: Dimensions,
    #[schema(value_type = Vec<ParcelLineSchema>)]
    pub lines: Vec<ParcelLine>,
    /// `closed`, or `cancelled` with its order.
    pub status: String,
}

#[derive(sqlx::FromRow)]
struct ListRow {
    id: Uuid,
    order_id: Uuid,
    warehouse: String,
    status: String,
    mode: String,
    awaiting_reallocation: bool,
    lines: Json<Vec<PickLine>>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(sqlx::FromRow)]
struct ParcelRow {
    id: Uuid,
    pick_list_id: Uuid,
    weight_grams: i32,
    dimensions: Json<Dimensions>,
    lines: Json<Vec<ParcelLine>>,
    status: String,
}

/// Pick lists chosen by `filter` (a `WHERE` clause over `pick_lists` using `$1`, `$2`, `$3`),
/// each with its tasks and parcels.
pub async fn pick_lists(
    pool: &PgPool,
    filter: &str,
    args: (&str, Option<&str>, i64),
) -> sqlx::Result<Vec<PickListView>> {
    let rows: Vec<ListRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, order_id, warehouse, status, mode, awaiting_reallocation, lines, created_at \
         FROM pick_lists WHERE {filter} ORDER BY created_at, id LIMIT $3"
    )))
    .bind(args.0)
    .bind(args.1)
    .bind(args.2)
    .fetch_all(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    describe(&mut conn, rows).await
}

/// The pick lists of one order.
pub async fn of_order(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Vec<PickListView>> {
    let rows: Vec<ListRow> = sqlx::query_as(
        "SELECT id, order_id, warehouse, status, mode, awaiting_reallocation, lines, created_at \
         FROM pick_lists WHERE order_id = $1 ORDER BY warehouse, id",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    describe(conn, rows).await
}

/// One pick list.
pub async fn pick_list(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<PickListView>> {
    let rows: Vec<ListRow> = sqlx::query_as(
        "SELECT id, order_id, warehouse, status, mode, awaiting_reallocation, lines, created_at \
         FROM pick_lists WHERE id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(describe(conn, rows).await?.into_iter().next())
}

async fn describe(conn: &mut PgConnection, rows: Vec<ListRow>) -> sqlx::Result<Vec<PickListView>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let tasks: Vec<TaskView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE pick_list_id = ANY($1) ORDER BY line_no, id"
    )))
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let parcels: Vec<ParcelRow> = sqlx::query_as(
        "SELECT id, pick_list_id, weight_grams, dimensions, lines, status FROM parcels \
         WHERE pick_list_id = ANY($1) ORDER BY id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut tasks_of: BTreeMap<Uuid, Vec<TaskView>> = BTreeMap::new();
    for task in tasks {
        tasks_of.entry(task.pick_list_id).or_default().push(task);
    }
    let mut parcels_of: BTreeMap<Uuid, Vec<&ParcelRow>> = BTreeMap::new();
    for parcel in &parcels {
        parcels_of
            .entry(parcel.pick_list_id)
            .or_default()
            .push(parcel);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let parcels = parcels_of.remove(&row.id).unwrap_or_default();
            let mut packed: BTreeMap<u32, u32> = BTreeMap::new();
            for line in parcels
                .iter()
                .filter(|p| p.status == "closed")
                .flat_map(|p| p.lines.0.iter())
            {
                *packed.entry(line.line_no).or_insert(0) += line.quantity;
            }
            let lines = row
                .lines
                .0
                .into_iter()
                .map(|l| PickLineView {
                    packed: packed.get(&l.line_no).copied().unwrap_or(0),
                    line_no: l.line_no,
                    sku: l.sku,
                    name: l.name,
                    quantity: l.quantity,
                    picked: l.picked,
                    weight_grams: l.weight_grams,
                    dimensions: l.dimensions,
                    customisations: l.customisations,
                })
                .collect();
            let parcels = parcels
                .into_iter()
                .map(|p| ParcelView {
                    parcel_id: p.id,
                    weight_grams: p.weight_grams,
                    dimensions: p.dimensions.0,
                    lines: p.lines.0.clone(),
                    status: p.status.clone(),
                })
                .collect();
            PickListView {
                id: row.id,
                order_id: row.order_id,
                warehouse: row.warehouse,
                status: row.status,
                mode: row.mode,
                awaiting_reallocation: row.awaiting_reallocation,
                lines,
                tasks: tasks_of.remove(&row.id).unwrap_or_default(),
                parcels,
                created_at: row.created_at,
            }
        })
        .collect())
}
