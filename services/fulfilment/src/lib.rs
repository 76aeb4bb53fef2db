//! `fulfilment`: turns a verified order into pick lists, one per warehouse that serves it, and
//! packs the picked lines into parcels. In `automatic` mode (the default, a simulated warehouse)
//! picking and packing complete at once and the order is published as `order.packed`, its
//! parcels grouped by warehouse so shipping can send one shipment per group.

mod packing;

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use orderflow_messages::{Envelope, order};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::outbox;
use orderflow_runtime::problem::Problem;
use orderflow_runtime::topology::QueueSpec;
use orderflow_runtime::{
    BoundService, CancellationToken, HandleError, Handler, Incoming, Service, ServiceSpec, Settings,
};
use serde::Deserialize;
use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub use packing::PackingRules;

pub const NAME: &str = "fulfilment";
pub const QUEUE: &str = "fulfilment.orders";
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Section `[fulfilment]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FulfilmentSettings {
    /// Heaviest parcel we close, in grams.
    pub max_parcel_weight_grams: u32,
}

impl Default for FulfilmentSettings {
    fn default() -> Self {
        FulfilmentSettings {
            max_parcel_weight_grams: 20_000,
        }
    }
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: NAME,
        schema: "fulfilment",
        migrator: &MIGRATOR,
        queues: vec![
            QueueSpec::new(QUEUE)
                .bind::<order::Verified>()
                .bind::<order::CancelRequested>(),
        ],
    }
}

struct Orders {
    rules: PackingRules,
}

impl Handler for Orders {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        if msg.is::<order::Verified>() {
            let verified = msg.decode::<order::Verified>()?;
            self.verified(conn, msg, verified).await
        } else if msg.is::<order::CancelRequested>() {
            // Work not yet packed stops here; packed parcels are unpacked by a later stage.
            sqlx::query(
                "UPDATE orders SET status = 'cancelled', updated_at = now() \
                 WHERE order_id = $1 AND status = 'picking'",
            )
            .bind(msg.envelope.order_id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        } else {
            Ok(())
        }
    }
}

impl Orders {
    async fn verified(
        &self,
        conn: &mut PgConnection,
        msg: &Incoming,
        verified: order::Verified,
    ) -> Result<(), HandleError> {
        let order_id = msg.envelope.order_id;
        let inserted = sqlx::query(
            "INSERT INTO orders (order_id, status, verified) VALUES ($1, 'picking', $2) \
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(sqlx::types::Json(&verified))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 0 {
            // Already known: a second `order.verified` for the same order changes nothing.
            return Ok(());
        }
        let groups = self
            .rules
            .pack(&verified)
            .map_err(|e| HandleError::Permanent(format!("order.verified: {e}")))?;
        for group in &groups {
            let pick_list = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO pick_lists (id, order_id, warehouse, status, lines) \
                 VALUES ($1, $2, $3, 'packed', $4)",
            )
            .bind(pick_list)
            .bind(order_id)
            .bind(&group.warehouse)
            .bind(sqlx::types::Json(&group.parcels))
            .execute(&mut *conn)
            .await?;
            for parcel in &group.parcels {
                sqlx::query(
                    "INSERT INTO parcels (id, pick_list_id, weight_grams, dimensions, lines) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(parcel.parcel_id)
                .bind(pick_list)
                .bind(parcel.weight_grams as i32)
                .bind(sqlx::types::Json(&parcel.dimensions))
                .bind(sqlx::types::Json(&parcel.lines))
                .execute(&mut *conn)
                .await?;
            }
        }
        sqlx::query("UPDATE orders SET status = 'packed', updated_at = now() WHERE order_id = $1")
            .bind(order_id)
            .execute(&mut *conn)
            .await?;
        let cash_on_delivery = (verified.payment.method
            == orderflow_messages::types::PaymentMethod::CashOnDelivery)
            .then(|| verified.subtotal.clone());
        let packed = order::Packed {
            groups,
            ship_to: verified.shipping_address.clone(),
            delivery: verified.delivery.clone(),
            declared_value: verified.subtotal.clone(),
            cash_on_delivery,
        };
        outbox::enqueue(
            conn,
            &Envelope::caused_by(NAME, &msg.envelope, packed),
            None,
        )
        .await?;
        Ok(())
    }
}

#[derive(Clone)]
struct Api {
    pool: PgPool,
}

/// `GET /v1/fulfilments/{order_id}`: the order's pick lists and parcels.
async fn get_fulfilment(
    caller: Caller,
    State(api): State<Api>,
    Path(order_id): Path<Uuid>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    caller.require(Role::Staff)?;
    let row: Option<(String,)> = sqlx::query_as("SELECT status FROM orders WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&api.pool)
        .await?;
    let Some((status,)) = row else {
        return Err(Problem::not_found(format!(
            "no fulfilment for order {order_id}"
        )));
    };
    let lists: Vec<(Uuid, String, String, sqlx::types::Json<serde_json::Value>)> =
        sqlx::query_as(
            "SELECT id, warehouse, status, lines FROM pick_lists WHERE order_id = $1 ORDER BY warehouse",
        )
        .bind(order_id)
        .fetch_all(&api.pool)
        .await?;
    let pick_lists: Vec<_> = lists
        .into_iter()
        .map(|(id, warehouse, status, parcels)| {
            serde_json::json!({"id": id, "warehouse": warehouse, "status": status, "parcels": parcels.0})
        })
        .collect();
    Ok(axum::Json(
        serde_json::json!({"order_id": order_id, "status": status, "pick_lists": pick_lists}),
    ))
}

pub async fn build(settings: &Settings) -> anyhow::Result<BoundService> {
    let own: FulfilmentSettings = settings.section("fulfilment")?;
    let service = Service::start(settings, spec()).await?;
    service.consume(
        QUEUE,
        Orders {
            rules: PackingRules {
                max_parcel_weight_grams: own.max_parcel_weight_grams,
            },
        },
    )?;
    let api = Router::new()
        .route("/v1/fulfilments/{order_id}", get(get_fulfilment))
        .with_state(Api {
            pool: service.pool.clone(),
        });
    let api = orderflow_runtime::auth::protect(api, settings.api_keys.clone());
    service.bind(api).await.context("fulfilment HTTP")
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(&settings).await?.run_until_stopped(shutdown).await
}
