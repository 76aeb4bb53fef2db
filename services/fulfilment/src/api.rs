//! The warehouse API: staff list open pick lists and tasks by warehouse, confirm picks with what
//! they found, complete tasks and close parcels; admins switch a warehouse between `automatic`
//! and `manual`. Every change takes the order's lock first, as the consumer and the simulated
//! warehouse do, so they never step on each other.
//!
//! Each handler carries its `#[utoipa::path]`; [`operations`] routes and documents them in one
//! go ([`crate::openapi`]).

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use orderflow_messages::order::Parcel;
use orderflow_messages::types::Dimensions;
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::openapi::ParcelSchema;
use crate::parcel::ParcelRequest;
use crate::pick_list::{self, OrderRow, PickList, SharedFloor, WorkError};
use crate::views::{self, PickListView, TaskView};
use crate::warehouse::Mode;
use orderflow_runtime::openapi::DimensionsSchema;

#[derive(Clone)]
pub struct Api {
    pub pool: PgPool,
    pub floor: SharedFloor,
}

/// Every operation, each routed and documented from its handler's `#[utoipa::path]`.
pub fn operations() -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(crate::openapi::Base::openapi())
        .routes(routes!(get_fulfilment))
        .routes(routes!(list_warehouses))
        .routes(routes!(set_mode))
        .routes(routes!(list_pick_lists))
        .routes(routes!(list_tasks))
        .routes(routes!(get_pick_list))
        .routes(routes!(confirm_pick))
        .routes(routes!(close_parcel))
        .routes(routes!(complete_task))
}

/// An id in the path; a malformed one is a 400 naming it.
fn id_in_path(raw: &str, what: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw)
        .map_err(|_| Problem::bad_request(format!("`{raw}` is not a {what} id (a UUID)")))
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

/// An order's fulfilment: its status here and its pick lists, tasks and parcels.
#[derive(Debug, Serialize, ToSchema)]
pub struct FulfilmentView {
    order_id: Uuid,
    status: String,
    cancel_reason: Option<String>,
    pick_lists: Vec<PickListView>,
}

/// The order's pick lists, tasks and parcels.
#[utoipa::path(get, path = "/v1/fulfilments/{order_id}", tag = "picking",
    description = "Role: `staff`, `admin`.",
    params(("order_id" = Uuid, Path, description = "the order's id")),
    responses(
        (status = 200, description = "the fulfilment", body = FulfilmentView),
        (status = 400, description = "the id is not a UUID"),
        (status = 404, description = "no fulfilment for this order"),
    ))]
async fn get_fulfilment(
    caller: Caller,
    State(api): State<Api>,
    Path(order_id): Path<String>,
) -> Result<Json<FulfilmentView>, Problem> {
    caller.require(Role::Staff)?;
    let order_id = id_in_path(&order_id, "order")?;
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
    Ok(Json(FulfilmentView {
        order_id,
        status,
        cancel_reason,
        pick_lists,
    }))
}

/// A warehouse's mode and where the mode comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseMode {
    warehouse: String,
    mode: Mode,
    /// `api` (set through this API), `settings` or `default`.
    source: String,
}

/// A warehouse, its mode and its open work.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseView {
    #[serde(flatten)]
    mode: WarehouseMode,
    open_pick_lists: i64,
    open_tasks: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseList {
    /// The mode of a warehouse nobody configured.
    default_mode: Mode,
    warehouses: Vec<WarehouseView>,
}

/// Every warehouse known here, its mode and its open work.
#[utoipa::path(get, path = "/v1/warehouses", tag = "warehouses",
    description = "Role: `staff`, `admin`.",
    responses((status = 200, description = "the warehouses", body = WarehouseList)))]
async fn list_warehouses(
    caller: Caller,
    State(api): State<Api>,
) -> Result<Json<WarehouseList>, Problem> {
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
        warehouses.push(WarehouseView {
            open_pick_lists: open_lists.get(&code).copied().unwrap_or(0),
            open_tasks: open_tasks.get(&code).copied().unwrap_or(0),
            mode: WarehouseMode {
                warehouse: code,
                mode,
                source: source.to_owned(),
            },
        });
    }
    Ok(Json(WarehouseList {
        default_mode: api.floor.modes.default_mode,
        warehouses,
    }))
}

/// The body of `PUT /v1/warehouses/{code}/mode`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    #[schema(value_type = Mode)]
    mode: String,
}

/// Switches a warehouse between `automatic` and `manual`; its unfinished pick lists follow.
#[utoipa::path(put, path = "/v1/warehouses/{code}/mode", tag = "warehouses",
    description = "Role: `admin`.",
    params(("code" = String, Path, description = "the warehouse's code")),
    request_body(content = ModeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "switched", body = WarehouseMode),
        (status = 422, description = "`mode` is neither `automatic` nor `manual`"),
    ))]
async fn set_mode(
    caller: Caller,
    State(api): State<Api>,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<ModeBody>,
) -> Result<Json<WarehouseMode>, Problem> {
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
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok(Json(WarehouseMode {
        warehouse: code,
        mode,
        source: "api".to_owned(),
    }))
}

/// Query parameters are read as text, so a malformed one is a 422 naming it like any other.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this status (see the operation for the statuses and the default).
    status: Option<String>,
    /// At most this many, 1 to 500 (100 when not given).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
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

#[derive(Debug, Serialize, ToSchema)]
pub struct PickListPage {
    warehouse: String,
    pick_lists: Vec<PickListView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    warehouse: String,
    tasks: Vec<TaskView>,
}

/// A warehouse's pick lists, oldest first: by default the unfinished ones (`open` and
/// `picked`).
#[utoipa::path(get, path = "/v1/warehouses/{code}/pick-lists", tag = "picking",
    description = "Role: `staff`, `admin`. `status`: `open`, `picked`, `packed`, `short` or \
                   `cancelled`.",
    params(("code" = String, Path, description = "the warehouse's code"), ListQuery),
    responses(
        (status = 200, description = "the pick lists", body = PickListPage),
        (status = 422, description = "`status` or `limit` is invalid"),
    ))]
async fn list_pick_lists(
    caller: Caller,
    State(api): State<Api>,
    Path(code): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<PickListPage>, Problem> {
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
    Ok(Json(PickListPage {
        warehouse: code,
        pick_lists: lists,
    }))
}

/// A warehouse's customisation tasks, oldest first: by default the open ones.
#[utoipa::path(get, path = "/v1/warehouses/{code}/tasks", tag = "picking",
    description = "Role: `staff`, `admin`. `status`: `open`, `done` or `cancelled`.",
    params(("code" = String, Path, description = "the warehouse's code"), ListQuery),
    responses(
        (status = 200, description = "the tasks", body = TaskPage),
        (status = 422, description = "`status` or `limit` is invalid"),
    ))]
async fn list_tasks(
    caller: Caller,
    State(api): State<Api>,
    Path(code): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<TaskPage>, Problem> {
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
    let tasks: Vec<TaskView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM tasks WHERE warehouse = $1 AND status = $2 \
         ORDER BY created_at, id LIMIT $3",
        views::TASK_COLUMNS
    )))
    .bind(&code)
    .bind(status)
    .bind(limit)
    .fetch_all(&api.pool)
    .await?;
    Ok(Json(TaskPage {
        warehouse: code,
        tasks,
    }))
}

/// One pick list with its lines, tasks and parcels.
#[utoipa::path(get, path = "/v1/pick-lists/{id}", tag = "picking",
    description = "Role: `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the pick list's id")),
    responses(
        (status = 200, description = "the pick list", body = PickListView),
        (status = 400, description = "the id is not a UUID"),
        (status = 404, description = "no such pick list"),
    ))]
async fn get_pick_list(
    caller: Caller,
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<PickListView>, Problem> {
    caller.require(Role::Staff)?;
    let id = id_in_path(&id, "pick list")?;
    let mut conn = api.pool.acquire().await?;
    views::pick_list(&mut conn, id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no pick list {id}")))
}

/// The body of `POST /v1/pick-lists/{id}/pick`: every line of the pick list once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PickBody {
    lines: Vec<FoundLine>,
}

/// How many units of a line were found.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FoundLine {
    line_no: u32,
    found: u32,
}

/// Confirms a pick with what was found; less than reserved publishes
/// `order.fulfilment_failed` (verification reallocates).
#[utoipa::path(post, path = "/v1/pick-lists/{id}/pick", tag = "picking",
    description = "Role: `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the pick list's id")),
    request_body(content = PickBody, content_type = "application/json"),
    responses(
        (status = 200, description = "picked (or short)", body = PickListView),
        (status = 404, description = "no such pick list"),
        (status = 409, description = "the pick list is not open"),
        (status = 422, description = "a line is missing, listed twice, unknown, or found more than reserved"),
    ))]
async fn confirm_pick(
    caller: Caller,
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PickBody>,
) -> Result<Json<PickListView>, Problem> {
    caller.require(Role::Staff)?;
    let id = id_in_path(&id, "pick list")?;
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
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    view.map(Json)
        .ok_or_else(|| Problem::not_found(format!("no pick list {id}")))
}

/// The body of `POST /v1/pick-lists/{id}/parcels`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ParcelBody {
    lines: Vec<ParcelBodyLine>,
    /// Weighed; the lines' weights when not given.
    weight_grams: Option<u32>,
    /// Measured; the packing rules' box when not given.
    #[schema(value_type = Option<DimensionsSchema>)]
    dimensions: Option<Dimensions>,
}

/// Units of a picked line in the parcel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ParcelBodyLine {
    line_no: u32,
    quantity: u32,
}

/// A closed parcel and its pick list's status afterwards.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParcelClosed {
    #[schema(value_type = ParcelSchema)]
    parcel: Parcel,
    /// `packed` once every picked unit is in a parcel.
    pick_list_status: String,
}

/// Closes a parcel of picked units; the last one packs the pick list.
#[utoipa::path(post, path = "/v1/pick-lists/{id}/parcels", tag = "picking",
    description = "Role: `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the pick list's id")),
    request_body(content = ParcelBody, content_type = "application/json"),
    responses(
        (status = 201, description = "closed", body = ParcelClosed),
        (status = 404, description = "no such pick list"),
        (status = 409, description = "not picked yet, or finished"),
        (status = 422, description = "more units than are left to pack, or a parcel over the limits"),
    ))]
async fn close_parcel(
    caller: Caller,
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ParcelBody>,
) -> Result<(StatusCode, Json<ParcelClosed>), Problem> {
    caller.require(Role::Staff)?;
    let id = id_in_path(&id, "pick list")?;
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
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok((
        StatusCode::CREATED,
        Json(ParcelClosed {
            parcel,
            pick_list_status: status,
        }),
    ))
}

/// The customisation is done (again: harmless).
#[utoipa::path(post, path = "/v1/tasks/{id}/complete", tag = "picking",
    description = "Role: `staff`, `admin`.",
    params(("id" = Uuid, Path, description = "the task's id")),
    responses(
        (status = 200, description = "done", body = TaskView),
        (status = 400, description = "the id is not a UUID"),
        (status = 404, description = "no such task"),
        (status = 409, description = "the task was cancelled"),
    ))]
async fn complete_task(
    caller: Caller,
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, Problem> {
    caller.require(Role::Staff)?;
    let id = id_in_path(&id, "task")?;
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
    let task: TaskView = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM tasks WHERE id = $1",
        views::TASK_COLUMNS
    )))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    orderflow_runtime::outbox::commit(tx, crate::SCHEMA).await?;
    Ok(Json(task))
}
