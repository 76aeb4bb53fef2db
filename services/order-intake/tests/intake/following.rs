//! Following an order's journey from the events the other services publish.

use std::time::Duration;

use chrono::Utc;
use orderflow_messages::order::{self, Placed};
use orderflow_messages::types::{Currency, Dimensions, Money, PaymentMethod};
use orderflow_messages::{Envelope, Event, Exchange, payment};
use uuid::Uuid;

use crate::helpers::{App, WAIT, placed_order, timeline_types};

pub fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::parse("EUR").expect("EUR"))
}

pub fn verified(p: &Placed) -> order::Verified {
    order::Verified {
        customer: p.customer.clone(),
        currency: p.currency.clone(),
        lines: p
            .lines
            .iter()
            .map(|l| order::VerifiedLine {
                line_no: l.line_no,
                sku: l.sku.clone(),
                name: "Blue mug".into(),
                quantity: l.quantity,
                unit_price: l.unit_price,
                tax_class: "standard".into(),
                weight_grams: 350,
                dimensions: None,
                customisations: vec![],
            })
            .collect(),
        subtotal: eur(2500),
        reservations: vec![order::Reservation {
            warehouse: "BER-1".into(),
            line_no: 1,
            sku: p.lines[0].sku.clone(),
            quantity: p.lines[0].quantity,
        }],
        shipping_address: p.shipping_address.clone(),
        billing_address: None,
        delivery: p.delivery.clone(),
        payment: p.payment.clone(),
        coupon_code: None,
    }
}

pub fn packed(p: &Placed) -> order::Packed {
    order::Packed {
        groups: vec![order::ParcelGroup {
            warehouse: "BER-1".into(),
            parcels: vec![order::Parcel {
                parcel_id: Uuid::now_v7(),
                weight_grams: 700,
                dimensions: Dimensions {
                    length_mm: 200,
                    width_mm: 150,
                    height_mm: 120,
                },
                lines: vec![],
            }],
        }],
        ship_to: p.shipping_address.clone(),
        delivery: p.delivery.clone(),
        declared_value: eur(2500),
        cash_on_delivery: None,
    }
}

pub fn shipped() -> order::Shipped {
    order::Shipped {
        shipments: vec![order::ShipmentRef {
            shipment_id: Uuid::now_v7(),
            carrier: "sim".into(),
            tracking_number: "SIM000123".into(),
            tracking_url: None,
        }],
        shipping_method: "standard".into(),
    }
}

pub fn delivered() -> order::Delivered {
    order::Delivered {
        delivered_at: Utc::now(),
    }
}

pub fn invoiced() -> order::Invoiced {
    order::Invoiced {
        invoice_number: "INV-2026-000042".into(),
        net: eur(2101),
        tax: eur(399),
        gross: eur(2500),
    }
}

pub fn paid() -> order::Paid {
    order::Paid {
        payment_id: Uuid::now_v7(),
        invoice_number: "INV-2026-000042".into(),
        amount: eur(2500),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_follows_the_journey_to_completed_and_the_customer_is_confirmed_once() {
    let app = App::spawn().await;
    let placed = placed_order(&app, "web-journey").await;
    let id = placed.order_id;
    let mut completions = app.probe(&["order.completed"]).await;

    step(
        &app,
        Envelope::caused_by("verification", &placed, verified(&placed.payload)),
        "verified",
    )
    .await;
    step(
        &app,
        Envelope::caused_by("fulfilment", &placed, packed(&placed.payload)),
        "packed",
    )
    .await;
    step(
        &app,
        Envelope::caused_by("shipping", &placed, shipped()),
        "shipped",
    )
    .await;
    step(
        &app,
        Envelope::caused_by("shipping", &placed, delivered()),
        "delivered",
    )
    .await;
    step(
        &app,
        Envelope::caused_by("billing", &placed, invoiced()),
        "invoiced",
    )
    .await;

    // Billing's payment arrives twice as the same message, and is later re-sent under a new id.
    let payment = Envelope::caused_by("billing", &placed, paid());
    app.publish(&payment).await;
    app.publish(&payment).await;
    let order = app.wait_for_entry(id, payment.message_id).await;
    assert_eq!(order["status"], "completed");
    let resent = Envelope::caused_by("billing", &placed, payment.payload.clone());
    app.publish(&resent).await;
    let order = app.wait_for_entry(id, resent.message_id).await;

    assert_eq!(order["status"], "completed");
    assert_eq!(
        timeline_types(&order),
        [
            "order.placed",
            "order.verified",
            "order.packed",
            "order.shipped",
            "order.delivered",
            "order.invoiced",
            "order.paid",
            "order.completed",
            "order.paid",
        ]
    );
    let details = order["timeline"].to_string();
    assert!(details.contains("INV-2026-000042"), "{details}");
    assert!(details.contains("SIM000123"), "{details}");

    let completed = completions.next_of::<order::Completed>(WAIT).await;
    assert_eq!(completed.order_id, id);
    assert_eq!(completed.causation_id, Some(payment.message_id));
    assert_eq!(
        completed.payload.confirmation_sent_to.as_str(),
        "ann@example.com"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'order_confirmation'")
            .await,
        1
    );
    // Nothing else is on its way: the outbox is empty once the first was published, so a
    // second `order.completed` would already be in the probe's queue.
    app.outbox_drained().await;
    let second = tokio::time::timeout(
        Duration::from_millis(500),
        completions.next_of::<order::Completed>(WAIT),
    )
    .await;
    assert!(second.is_err(), "order.completed was published twice");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_event_never_moves_the_status_backwards() {
    let app = App::spawn().await;
    let placed = placed_order(&app, "web-late").await;
    let id = placed.order_id;

    let ship = Envelope::caused_by("shipping", &placed, shipped());
    app.publish(&ship).await;
    assert_eq!(
        app.wait_for_entry(id, ship.message_id).await["status"],
        "shipped"
    );

    let late = Envelope::caused_by("verification", &placed, verified(&placed.payload));
    app.publish(&late).await;
    let order = app.wait_for_entry(id, late.message_id).await;
    assert_eq!(
        order["status"], "shipped",
        "a late order.verified leaves shipped"
    );

    let lost = Envelope::caused_by(
        "shipping",
        &placed,
        order::DeliveryFailed {
            shipment_id: Uuid::now_v7(),
            status: "failure".into(),
            reason: "parcel lost".into(),
        },
    );
    app.publish(&lost).await;
    assert_eq!(
        app.wait_for_entry(id, lost.message_id).await["status"],
        "on_hold"
    );

    let late_packing = Envelope::caused_by("fulfilment", &placed, packed(&placed.payload));
    app.publish(&late_packing).await;
    assert_eq!(
        app.wait_for_entry(id, late_packing.message_id).await["status"],
        "on_hold"
    );

    let redelivered = Envelope::caused_by("shipping", &placed, delivered());
    app.publish(&redelivered).await;
    assert_eq!(
        app.wait_for_entry(id, redelivered.message_id).await["status"],
        "delivered"
    );

    let cancelled = Envelope::caused_by(
        "billing",
        &placed,
        order::Cancelled {
            reason: "customer asked".into(),
        },
    );
    app.publish(&cancelled).await;
    assert_eq!(
        app.wait_for_entry(id, cancelled.message_id).await["status"],
        "cancelled"
    );
    let after_the_end = Envelope::caused_by("billing", &placed, invoiced());
    app.publish(&after_the_end).await;
    let order = app.wait_for_entry(id, after_the_end.message_id).await;
    assert_eq!(
        order["status"], "cancelled",
        "a terminal status never changes"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_puts_the_order_on_hold_with_the_providers_reason() {
    let app = App::spawn().await;
    let placed = placed_order(&app, "web-declined").await;
    let id = placed.order_id;

    let declined = Envelope::caused_by(
        "billing",
        &placed,
        payment::Failed {
            payment_id: Uuid::now_v7(),
            method: PaymentMethod::Card,
            amount: eur(2500),
            code: "declined".into(),
            message: "the card was declined".into(),
        },
    );
    app.publish(&declined).await;
    let order = app.wait_for_entry(id, declined.message_id).await;
    assert_eq!(order["status"], "on_hold");
    let entry = &order["timeline"][1];
    assert_eq!(entry["type"], "payment.failed");
    assert_eq!(entry["producer"], "billing");
    assert!(
        entry["detail"].as_str().unwrap_or("").contains("declined"),
        "{entry}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_about_an_unknown_order_is_dead_lettered_with_the_reason() {
    let app = App::spawn().await;
    let dead_key = format!("{}order-intake.events", app.env.prefix);
    let mut dead = app
        .env
        .probe(&[(Exchange::DeadLetters, dead_key.as_str())])
        .await;
    let stranger = Envelope::new("shipping", Uuid::now_v7(), delivered());
    app.publish(&stranger).await;
    let (_, letter) = dead.next(WAIT).await;
    assert_eq!(letter.message_id, stranger.message_id);
    assert_eq!(app.count("SELECT count(*) FROM timeline").await, 0);
    app.stop().await;
}

/// Publishes `envelope` and checks the order's status once it is handled.
async fn step<E: Event>(app: &App, envelope: Envelope<E>, status: &str) {
    app.publish(&envelope).await;
    let order = app
        .wait_for_entry(envelope.order_id, envelope.message_id)
        .await;
    assert_eq!(
        order["status"], status,
        "after {} from {}",
        envelope.kind, envelope.producer
    );
}
