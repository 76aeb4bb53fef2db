//! The `shipping.orders` queue: a packed order becomes one shipment per parcel group, each
//! requested from the carrier its shipping rule names (or, for in-store collection, made ready
//! by shipping itself); `order.cancel_requested` goes to the arbiter in [`crate::cancellation`].
//!
//! The order's record is locked (`FOR UPDATE`) before anything else, so two deliveries about
//! the same order — a repeated `order.packed`, a cancellation racing it — are handled one after
//! the other even on different replicas.

use std::time::Duration;

use orderflow_messages::order::{self, Packed, Reason};
use orderflow_messages::shipment::Requested;
use orderflow_messages::types::Money;
use orderflow_messages::{Envelope, Event};
use orderflow_runtime::{HandleError, Handler, Incoming, outbox};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::rules::{self, Consignment, Rule};
use crate::settings::PICKUP;
use crate::shipment::ShipmentStatus;
use crate::{NAME, cancellation, pickup, registry, valuation};

/// Handles `order.packed` and `order.cancel_requested`.
#[derive(Debug, Clone, Copy)]
pub struct Orders {
    /// How long a carrier has to create the label (see [`crate::label_deadline`]).
    pub label_timeout: Duration,
}

impl Handler for Orders {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        if msg.is::<order::Packed>() {
            packed(
                conn,
                msg,
                msg.decode::<order::Packed>()?,
                self.label_timeout,
            )
            .await
        } else if msg.is::<order::CancelRequested>() {
            cancellation::requested(conn, msg, msg.decode::<order::CancelRequested>()?).await
        } else {
            Ok(())
        }
    }
}

/// The order's shipping status, locked for this transaction; `None` if shipping never heard of
/// the order.
pub(crate) async fn lock_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT status FROM shipping_orders WHERE order_id = $1 FOR UPDATE")
        .bind(order_id)
        .fetch_optional(conn)
        .await
}

/// A concurrent transaction created the order's record first; retrying sees it.
pub(crate) fn created_concurrently(order_id: Uuid) -> HandleError {
    HandleError::Transient(anyhow::anyhow!(
        "the shipping record of order {order_id} was created concurrently; retrying"
    ))
}

async fn packed(
    conn: &mut PgConnection,
    msg: &Incoming,
    packed: Packed,
    label_timeout: Duration,
) -> Result<(), HandleError> {
    let order_id = msg.envelope.order_id;
    check_groups(&packed)?;
    let known = lock_order(conn, order_id).await?;
    match known.as_deref() {
        None | Some("on_hold") => {}
        Some(status) => {
            tracing::info!(%order_id, status, "order already handled by shipping; packed ignored");
            return Ok(());
        }
    }

    let rules = registry::rules(conn).await?;
    let method = packed.delivery.shipping_method.as_str();
    let mut chosen: Vec<Rule> = Vec::with_capacity(packed.groups.len());
    for group in &packed.groups {
        let consignment = Consignment {
            shipping_method: method,
            country: packed.ship_to.country.as_str(),
            heaviest_parcel_grams: group
                .parcels
                .iter()
                .map(|p| p.weight_grams)
                .max()
                .unwrap_or(0),
            cash_on_delivery: packed.cash_on_delivery.is_some(),
        };
        match rules::choose(&rules, &consignment) {
            Some(rule) => chosen.push(rule.clone()),
            None => {
                let why = consignment.unmatched_message(&group.warehouse);
                return hold(conn, msg, known.is_some(), why).await;
            }
        }
    }

    if known.is_some() {
        sqlx::query(
            "UPDATE shipping_orders SET status = 'shipping', shipping_method = $2, \
             expected_shipments = $3, hold_reason = NULL, updated_at = now() \
             WHERE order_id = $1 AND status = 'on_hold'",
        )
        .bind(order_id)
        .bind(method)
        .bind(group_count(&packed)?)
        .execute(&mut *conn)
        .await?;
    } else {
        let created = sqlx::query(
            "INSERT INTO shipping_orders (order_id, status, shipping_method, expected_shipments) \
             VALUES ($1, 'shipping', $2, $3) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(method)
        .bind(group_count(&packed)?)
        .execute(&mut *conn)
        .await?;
        if created.rows_affected() == 0 {
            return Err(created_concurrently(order_id));
        }
    }

    let weights: Vec<u64> = packed
        .groups
        .iter()
        .map(|g| g.parcels.iter().map(|p| u64::from(p.weight_grams)).sum())
        .collect();
    let declared = valuation::split(packed.declared_value.amount, &weights);
    let cash = packed
        .cash_on_delivery
        .as_ref()
        .map(|cod| valuation::split(cod.amount, &weights));
    let mut in_store = Vec::new();
    for (i, (group, rule)) in packed.groups.iter().zip(&chosen).enumerate() {
        let request = Requested {
            shipment_id: Uuid::now_v7(),
            order_id,
            carrier: rule.carrier.clone(),
            service_level: rule.service_level.clone(),
            ship_from_warehouse: group.warehouse.clone(),
            ship_to: packed.ship_to.clone(),
            parcels: group.parcels.clone(),
            declared_value: Money::new(declared[i], packed.declared_value.currency.clone()),
            cash_on_delivery: match (&packed.cash_on_delivery, &cash) {
                (Some(cod), Some(shares)) => Some(Money::new(shares[i], cod.currency.clone())),
                _ => None,
            },
            idempotency_key: format!("{order_id}:{}:request", group.warehouse),
        };
        let envelope = Envelope::caused_by(NAME, &msg.envelope, request.clone());
        let by_shipping = request.carrier == PICKUP;
        let inserted = sqlx::query(
            "INSERT INTO shipments (shipment_id, order_id, carrier, service_level, warehouse, status, \
               parcels, ship_to, declared_value, cash_on_delivery, currency, \
               request, correlation_id, request_message_id, label_due_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
               CASE WHEN $15 THEN NULL ELSE now() + make_interval(secs => $16) END) \
             ON CONFLICT ON CONSTRAINT shipments_one_per_warehouse DO NOTHING",
        )
        .bind(request.shipment_id)
        .bind(order_id)
        .bind(&request.carrier)
        .bind(&request.service_level)
        .bind(&request.ship_from_warehouse)
        .bind(ShipmentStatus::Requested.as_str())
        .bind(serde_json::to_value(&request.parcels).map_err(anyhow::Error::from)?)
        .bind(serde_json::to_value(&request.ship_to).map_err(anyhow::Error::from)?)
        .bind(request.declared_value.amount)
        .bind(request.cash_on_delivery.as_ref().map(|m| m.amount))
        .bind(request.declared_value.currency.as_str())
        .bind(serde_json::to_value(&request).map_err(anyhow::Error::from)?)
        .bind(msg.envelope.correlation_id)
        .bind(envelope.message_id)
        .bind(by_shipping)
        .bind(label_timeout.as_secs_f64())
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 0 {
            continue;
        }
        if by_shipping {
            in_store.push((request.shipment_id, request.ship_from_warehouse.clone()));
        } else {
            outbox::enqueue(conn, &envelope, Some(&request.carrier)).await?;
        }
    }
    // After every shipment exists, so the order's progress is judged on all of them.
    for (shipment_id, warehouse) in in_store {
        pickup::make_ready(conn, &msg.envelope, shipment_id, &warehouse).await?;
    }
    tracing::info!(%order_id, shipments = chosen.len(), "shipments requested");
    Ok(())
}

/// Fulfilment's invariants that shipping relies on; a packed order that breaks them cannot be
/// shipped by retrying.
fn check_groups(packed: &Packed) -> Result<(), HandleError> {
    let broken = |why: String| Err(HandleError::Permanent(format!("{}: {why}", Packed::TYPE)));
    if packed.groups.is_empty() {
        return broken("no parcel groups".into());
    }
    for (i, group) in packed.groups.iter().enumerate() {
        if group.parcels.is_empty() {
            return broken(format!("groups[{i}] ({}) has no parcels", group.warehouse));
        }
        if packed.groups[..i]
            .iter()
            .any(|g| g.warehouse == group.warehouse)
        {
            return broken(format!(
                "warehouse {} has two parcel groups",
                group.warehouse
            ));
        }
    }
    if packed.declared_value.amount < 0
        || packed
            .cash_on_delivery
            .as_ref()
            .is_some_and(|m| m.amount < 0)
    {
        return broken("negative declared value or cash-on-delivery amount".into());
    }
    Ok(())
}

fn group_count(packed: &Packed) -> Result<i32, HandleError> {
    i32::try_from(packed.groups.len())
        .map_err(|_| HandleError::Permanent(format!("{}: too many parcel groups", Packed::TYPE)))
}

/// No rule carries a group: a person must add one. The order is recorded as held, so a
/// repeated `order.packed` does not hold it twice; one that arrives after a rule was added
/// ships it.
async fn hold(
    conn: &mut PgConnection,
    msg: &Incoming,
    already_held: bool,
    why: String,
) -> Result<(), HandleError> {
    let order_id = msg.envelope.order_id;
    if already_held {
        tracing::info!(%order_id, "order still has no shipping rule; it stays on hold");
        return Ok(());
    }
    let created = sqlx::query(
        "INSERT INTO shipping_orders (order_id, status, hold_reason) VALUES ($1, 'on_hold', $2) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(&why)
    .execute(&mut *conn)
    .await?;
    if created.rows_affected() == 0 {
        return Err(created_concurrently(order_id));
    }
    tracing::warn!(%order_id, reason = %why, "order on hold: no shipping rule");
    let on_hold = order::OnHold {
        stage: NAME.to_owned(),
        reason: Reason {
            code: "no_shipping_rule".into(),
            line_no: None,
            field: Some("delivery.shipping_method".into()),
            message: why,
        },
    };
    outbox::enqueue(
        conn,
        &Envelope::caused_by(NAME, &msg.envelope, on_hold),
        None,
    )
    .await?;
    Ok(())
}
