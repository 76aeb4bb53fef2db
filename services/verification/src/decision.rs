//! Deciding an order: every check ([`pricing`], [`order_policy`]), then the stock. Used for a
//! newly placed order and again for a backordered one when stock arrives.
//!
//! The caller holds the order's record (so no other replica decides the same order at once);
//! the reservation attempt runs in a savepoint of its own, so a failed attempt leaves nothing
//! behind.

use std::collections::HashMap;

use orderflow_messages::order::{Placed, Reason, Reservation, ShortLine, Verified};
use orderflow_messages::stock::Low;
use orderflow_messages::types::Money;
use orderflow_runtime::HandleError;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::allocation::{Allocation, Demand, allocate};
use crate::catalogue::{self, Product};
use crate::customer;
use crate::low_stock;
use crate::order_policy::{self, Context};
use crate::pricing::{self, reason};
use crate::reservation::{self, Held};
use crate::settings::VerificationSettings;
use crate::stock;

/// What was decided.
#[derive(Debug)]
pub enum Decision {
    /// Checked and reserved, with the rows that fell to their reorder point on the way.
    Verified {
        verified: Box<Verified>,
        lows: Vec<Low>,
    },
    /// Every reason it cannot be served.
    Rejected(Vec<Reason>),
    /// Valid, but these lines wait for stock (every short product allows backorder).
    Backordered(Vec<ShortLine>),
}

pub fn out_of_stock(short: &ShortLine) -> Reason {
    reason(
        "out_of_stock",
        Some(short.line_no),
        None,
        format!(
            "{} more of SKU {} needed than in stock",
            short.missing, short.sku
        ),
    )
}

/// Whether every short line's product may be backordered.
pub fn backorderable(short: &[ShortLine], products: &HashMap<String, Product>) -> bool {
    short.iter().all(|s| {
        products
            .get(s.sku.as_str())
            .is_some_and(|p| p.allow_backorder)
    })
}

/// Decides `placed`; reserves its stock when it can be served.
pub async fn decide(
    conn: &mut PgConnection,
    settings: &VerificationSettings,
    order_id: Uuid,
    placed: &Placed,
) -> Result<Decision, HandleError> {
    let skus: Vec<String> = placed
        .lines
        .iter()
        .map(|l| l.sku.as_str().to_owned())
        .collect();
    let products = catalogue::find_many(&mut *conn, &skus).await?;
    let customer = match &placed.customer.customer_id {
        Some(id) => customer::get(&mut *conn, id).await?,
        None => None,
    };
    let priced = pricing::price(placed, &products, settings);
    let value = pricing::order_value(placed, &priced);
    let demands: Vec<Demand> = priced
        .lines
        .iter()
        .map(|l| Demand {
            line_no: l.line_no,
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    let mut reasons = priced.reasons;
    reasons.extend(order_policy::check(
        placed,
        &Context {
            customer: customer.as_ref(),
            value,
            settings,
        },
    ));

    if !reasons.is_empty() {
        // Rejected anyway; stock is only read, to tell the customer all that is wrong.
        let available = stock::availability(conn, &skus, false).await?;
        if let Allocation::Short(short) = allocate(&demands, &available) {
            reasons.extend(
                short
                    .iter()
                    .filter(|s| !backorderable(std::slice::from_ref(s), &products))
                    .map(out_of_stock),
            );
        }
        return Ok(Decision::Rejected(reasons));
    }
    let Some(subtotal) = pricing::subtotal(&priced.lines) else {
        return Ok(Decision::Rejected(vec![reason(
            "amount_limit",
            None,
            Some("lines".into()),
            "the order's total does not fit in minor units".into(),
        )]));
    };

    let mut attempt = conn.begin().await?;
    let available = stock::availability(&mut attempt, &skus, true).await?;
    let mut reservations = match allocate(&demands, &available) {
        Allocation::Filled(reservations) => reservations,
        Allocation::Short(short) => {
            attempt.rollback().await?;
            return Ok(if backorderable(&short, &products) {
                Decision::Backordered(short)
            } else {
                Decision::Rejected(
                    short
                        .iter()
                        .filter(|s| !backorderable(std::slice::from_ref(s), &products))
                        .map(out_of_stock)
                        .collect(),
                )
            });
        }
    };
    let lows = match hold(&mut attempt, order_id, &reservations).await? {
        Ok(lows) => lows,
        Err(ran_out) => {
            attempt.rollback().await?;
            return Ok(Decision::Rejected(ran_out));
        }
    };
    attempt.commit().await?;

    reservations.sort_by(|a, b| (a.line_no, &a.warehouse).cmp(&(b.line_no, &b.warehouse)));
    let mut lines = priced.lines;
    lines.sort_by_key(|l| l.line_no);
    let verified = Verified {
        customer: placed.customer.clone(),
        currency: placed.currency.clone(),
        lines,
        subtotal: Money::new(subtotal, placed.currency.clone()),
        reservations,
        shipping_address: placed.shipping_address.clone(),
        billing_address: placed.billing_address.clone(),
        delivery: placed.delivery.clone(),
        payment: placed.payment.clone(),
        coupon_code: placed.coupon_code.clone(),
    };
    Ok(Decision::Verified {
        verified: Box::new(verified),
        lows,
    })
}

/// Reserves `reservations` (rows already locked by the caller) and marks the rows that fell to
/// their reorder point; `Err(reasons)` when a row no longer had enough, which only a writer
/// ignoring the lock order could cause (the caller then rolls back).
pub async fn hold(
    conn: &mut PgConnection,
    order_id: Uuid,
    reservations: &[Reservation],
) -> Result<Result<Vec<Low>, Vec<Reason>>, HandleError> {
    match reservation::hold(&mut *conn, order_id, reservations).await? {
        Held::Done(touched) => {
            let rows = touched.into_iter().map(|t| (t.warehouse, t.sku)).collect();
            Ok(Ok(low_stock::mark_all(conn, rows).await?))
        }
        Held::Short { warehouse, sku } => Ok(Err(reservations
            .iter()
            .filter(|r| r.warehouse == warehouse && r.sku.as_str() == sku)
            .map(|r| {
                reason(
                    "out_of_stock",
                    Some(r.line_no),
                    None,
                    format!("SKU {sku} ran out in warehouse {warehouse}"),
                )
            })
            .collect())),
    }
}

/// Reserves the units of `lines` from any warehouse but `except`; the new reservations and the
/// rows that fell low, or `None` (nothing reserved) when the stock there is not enough.
pub async fn reallocate(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[ShortLine],
    except: Option<&str>,
) -> Result<Option<(Vec<Reservation>, Vec<Low>)>, HandleError> {
    let skus: Vec<String> = lines.iter().map(|l| l.sku.as_str().to_owned()).collect();
    let mut attempt = conn.begin().await?;
    let mut available = stock::availability(&mut attempt, &skus, true).await?;
    if let Some(except) = except {
        available.retain(|(w, _), _| w != except);
    }
    let demands: Vec<Demand> = lines
        .iter()
        .map(|l| Demand {
            line_no: l.line_no,
            sku: l.sku.clone(),
            quantity: l.missing,
        })
        .collect();
    let Allocation::Filled(mut reservations) = allocate(&demands, &available) else {
        attempt.rollback().await?;
        return Ok(None);
    };
    match hold(&mut attempt, order_id, &reservations).await? {
        Ok(lows) => {
            attempt.commit().await?;
            reservations.sort_by(|a, b| (a.line_no, &a.warehouse).cmp(&(b.line_no, &b.warehouse)));
            Ok(Some((reservations, lows)))
        }
        Err(_) => {
            attempt.rollback().await?;
            Ok(None)
        }
    }
}
