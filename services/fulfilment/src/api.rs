//! The warehouse API: staff list open pick lists and tasks by warehouse, confirm picks with what
//! they found, complete tasks and close parcels; admins switch a warehouse between `automatic`
//! and `manual`. Every change takes the order's lock first, as the consumer and the simulated
//! warehouse do, so they never step on each other.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use orderflow_messages::types::Dimensions;
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::parcel::ParcelRequest;
use crate::pick_list::{self, OrderRow, PickList, SharedFloor, WorkError};
use crate::views;
use crate::warehouse::Mode;

#[derive(Clone)]
pub struct Api {
    pub pool: PgPool,
    pub floor: SharedFloor,
}

/// Every route, in the order of [`crate::openapi::OPERATIONS`].
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/v1/fulfilments/{order_id}", get(get_fulfilment))
        .route("/v1/warehouses", get(list_warehouses))
        .route("/v1/warehouses/{code}/mode", put(set_mode))
        .route("/v1/warehouses/{code}/pick-lists", get(list_pick_lists))
        .route("/v1/warehouses/{code}/tasks", get(list_tasks))
        .route("/v1/pick-lists/{id}", get(get_pick_list))
        .route("/v1/pick-lists/{id}/pick", post(confirm_pick))
        .route("/v1/pick-lists/{id}/parcels", post(close_parcel))
        .route("/v1/tasks/{id}/complete", post(complete_task))
        .with_state(api)
}

fn problem(e: WorkError) -> Problem {
    match e {
        WorkError::NotFound(what) => Problem::not_found(what),
        WorkError::Conflict(why) => Problem::conflict(why),
        WorkError::Invalid(errors) => Problem::validation(errors),
        WorkError::Unexpected(e) => Problem::internal(&e),
    }
}

/// Locks the order of pick list `id` (the per-order turn), then reads the pick list.
async fn lock_pick_list(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<(OrderRow, PickList), Problem> {
    let order_id: Option<Uuid> =
        sqlx::query_scalar("SELECT order_id FROM pick_lists WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let not_found = || Problem::not_found(format!("no pick list {id}"));
    let order_id = order_id.ok_or_else(not_found)?;
    let order = pick_list::lock_order(conn, order_id)
        .await?
        .ok_or_else(not_found)?;
    let list = pick_list::load(conn, id).await?.ok_or_else(not_found)?;
    Ok((order, list))
}

/// `GET /v1/fulfilments/{order_id}`: the order's pick lists, tasks and parcels.
async fn get_fulfilment(
    caller: Caller,
    State(api): State<Api>,
    Path(order_id): Path<Uuid>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let mut conn = api.pool.acquire().await?;
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT status, cancel_reason FROM orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((status, cancel_reason)) = row else {
        return Err(Problem::not_found(format!(
            "no fulfilment for order {order_id}"
        )));
    };
    let pick_lists = views::of_order(&mut conn, order_id).await?;
    Ok(Json(json!({
        "order_id": order_id, "status": status, "cancel_reason": cancel_reason,
        "pick_lists": pick_lists,
    })))
}

/// `GET /v1/warehouses`: every warehouse known here, its mode and its open work.
async fn list_warehouses(caller: Caller, State(api): State<Api>) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let mut conn = api.pool.acquire().await?;
    let mut codes: BTreeSet<String> = api.floor.modes.configured.keys().cloned().collect();
    let seen: Vec<String> = sqlx::query_scalar(
        "SELECT warehouse FROM warehouse_modes UNION SELECT DISTINCT warehouse FROM pick_lists",
    )
    .fetch_all(&mut *conn)
    .await?;
    codes.extend(seen);
    let open_lists: BTreeMap<String, i64> = sqlx::query_as(
        "SELECT warehouse, count(*) FROM pick_lists WHERE status IN ('open', 'picked') \
         GROUP BY warehouse",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let open_tasks: BTreeMap<String, i64> = sqlx::query_as(
        "SELECT warehouse, count(*) FROM tasks WHERE status = 'open' GROUP BY warehouse",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut warehouses = Vec::new();
    for code in codes {
        let (mode, source) = api.floor.modes.of(&mut conn, &code).await?;
        warehouses.push(json!({
            "warehouse": code, "mode": mode, "source": source,
            "open_pick_lists": open_lists.get(&code).copied().unwrap_or(0),
            "open_tasks": open_tasks.get(&code).copied().unwrap_or(0),
        }));
    }
    Ok(Json(json!({
        "default_mode": api.floor.modes.default_mode,
        "warehouses": warehouses,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
}

/// `PUT /v1/warehouses/{code}/mode` (admin): `{"mode": "manual"}`.
async fn set_mode(
    caller: Caller,
    State(api): State<Api>,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<ModeBody>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Admin)?;
    let Some(mode) = Mode::parse(&body.mode) else {
        return Err(Problem::validation(vec![FieldError::new(
            "mode",
            "one_of",
            "must be `automatic` or `manual`",
        )]));
    };
    let mut tx = api.pool.begin().await?;
    api.floor.set_mode(&mut tx, &code, mode).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"warehouse": code, "mode": mode, "source": "api"}),
    ))
}

/// Query parameters are read as text, so a malformed one is a 422 naming it like any other.
#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
}

impl ListQuery {
    fn limit(&self) -> Result<i64, Problem> {
        match self.limit.as_deref().map(str::parse::<i64>) {
            None => Ok(100),
            Some(Ok(n)) if (1..=500).contains(&n) => Ok(n),
            Some(_) => Err(Problem::validation(vec![FieldError::new(
                "limit",
                "range",
                "must be from 1 to 500",
            )])),
        }
    }
}

/// `GET /v1/warehouses/{code}/pick-lists?status=&limit=`: by default the unfinished ones
/// (`open` and `picked`), oldest first.
async fn list_pick_lists(
    caller: Caller,
    State(api): State<Api>,
    Path(code): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let limit = query.limit()?;
    let status = query.status.as_deref();
    if let Some(s) = status
        && !["open", "picked", "packed", "short", "cancelled"].contains(&s)
    {
        return Err(Problem::validation(vec![FieldError::new(
            "status",
            "one_of",
            "must be one of open, picked, packed, short, cancelled",
        )]));
    }
    let filter = "warehouse = $1 AND CASE WHEN $2::text IS NULL \
                  THEN status IN ('open', 'picked') ELSE status = $2 END";
    let lists = views::pick_lists(&api.pool, filter, (&code, status, limit)).await?;
    Ok(Json(json!({"warehouse": code, "pick_lists": lists})))
}

/// `GET /v1/warehouses/{code}/tasks?status=&limit=`: by default the open ones, oldest first.
async fn list_tasks(
    caller: Caller,
    State(api): State<Api>,
    Path(code): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let limit = query.limit()?;
    let status = query.status.as_deref().unwrap_or("open");
    if !["open", "done", "cancelled"].contains(&status) {
        return Err(Problem::validation(vec![FieldError::new(
            "status",
            "one_of",
            "must be one of open, done, cancelled",
        )]));
    }
    let tasks: Vec<views::TaskView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM tasks WHERE warehouse = $1 AND status = $2 \
         ORDER BY created_at, id LIMIT $3",
        views::TASK_COLUMNS
    )))
    .bind(&code)
    .bind(status)
    .bind(limit)
    .fetch_all(&api.pool)
    .await?;
    Ok(Json(json!({"warehouse": code, "tasks": tasks})))
}

/// `GET /v1/pick-lists/{id}`.
async fn get_pick_list(
    caller: Caller,
    State(api): State<Api>,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let mut conn = api.pool.acquire().await?;
    views::pick_list(&mut conn, id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no pick list {id}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PickBody {
    lines: Vec<FoundLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FoundLine {
    line_no: u32,
    found: u32,
}

/// `POST /v1/pick-lists/{id}/pick`: `{"lines": [{"line_no": 1, "found": 2}]}`, every line of
/// the pick list once. Less than reserved publishes `order.fulfilment_failed`.
async fn confirm_pick(
    caller: Caller,
    State(api): State<Api>,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<PickBody>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let mut found = BTreeMap::new();
    for (i, line) in body.lines.iter().enumerate() {
        if found.insert(line.line_no, line.found).is_some() {
            return Err(Problem::validation(vec![FieldError::new(
                format!("lines[{i}].line_no"),
                "unique",
                format!("line {} is listed twice", line.line_no),
            )]));
        }
    }
    let mut tx = api.pool.begin().await?;
    let (order, list) = lock_pick_list(&mut tx, id).await?;
    api.floor
        .confirm_pick(&mut tx, &order, &list, &found)
        .await
        .map_err(problem)?;
    // In an automatic warehouse the simulator carries on from here.
    api.floor
        .advance(&mut tx, order.order_id)
        .await
        .map_err(problem)?;
    let view = views::pick_list(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(view.unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParcelBody {
    lines: Vec<ParcelBodyLine>,
    weight_grams: Option<u32>,
    dimensions: Option<Dimensions>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParcelBodyLine {
    line_no: u32,
    quantity: u32,
}

/// `POST /v1/pick-lists/{id}/parcels`: closes a parcel, `{"lines": [{"line_no", "quantity"}],
/// "weight_grams"?, "dimensions"?}`. 201 with the parcel and the pick list's status.
async fn close_parcel(
    caller: Caller,
    State(api): State<Api>,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<ParcelBody>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require(Role::Staff)?;
    let request = ParcelRequest {
        lines: body.lines.iter().map(|l| (l.line_no, l.quantity)).collect(),
        weight_grams: body.weight_grams,
        dimensions: body.dimensions,
    };
    let mut tx = api.pool.begin().await?;
    let (order, list) = lock_pick_list(&mut tx, id).await?;
    let parcel = api
        .floor
        .close_parcel(&mut tx, &order, &list, request)
        .await
        .map_err(problem)?;
    let status: String = sqlx::query_scalar("SELECT status FROM pick_lists WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"parcel": parcel, "pick_list_status": status})),
    ))
}

/// `POST /v1/tasks/{id}/complete`: the customisation is done (again: harmless).
async fn complete_task(
    caller: Caller,
    State(api): State<Api>,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Staff)?;
    let mut tx = api.pool.begin().await?;
    let order_id: Option<Uuid> = sqlx::query_scalar("SELECT order_id FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let order_id = order_id.ok_or_else(|| Problem::not_found(format!("no task {id}")))?;
    pick_list::lock_order(&mut tx, order_id).await?;
    api.floor
        .complete_task(
            &mut tx,
            id,
            caller.key_name.as_deref().unwrap_or(caller.role.as_str()),
        )
        .await
        .map_err(problem)?;
    api.floor
        .advance(&mut tx, order_id)
        .await
        .map_err(problem)?;
    let task: views::TaskView = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM tasks WHERE id = $1",
        views::TASK_COLUMNS
    )))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(json!(task)))
}
