//! Payments: authorised on verification, declined cards put the order on hold, money is
//! released when the order is cancelled or its delivery fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use billing::connector::sim_card::SimCard;
use billing::connector::{Answer, AuthorizeRequest, Connectors, PaymentConnector, SettleRequest};
use orderflow_messages::order::{
    CancelRequested, Cancelled, DeliveryFailed, Invoiced, OnHold, Paid,
};
use orderflow_messages::payment::{Authorized, Failed, Refunded, Voided};
use orderflow_messages::types::PaymentMethod;
use orderflow_messages::{Envelope, Exchange};
use uuid::Uuid;

use crate::helpers::*;

async fn payment_status(app: &App, order_id: Uuid) -> String {
    let list = app
        .get_json(&format!("/v1/payments?order_id={order_id}"))
        .await;
    list["payments"][0]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_puts_the_order_on_hold_and_it_is_never_paid() {
    let mut app = spawn_app().await;
    let declined = Uuid::now_v7();
    let broke = Uuid::now_v7();
    app.publish(&verified(declined, &eur_card_order("tok_decline")))
        .await;
    app.publish(&verified(broke, &eur_card_order("tok_insufficient_funds")))
        .await;

    let failed = app.wait_for::<Failed>(declined).await;
    assert_eq!(failed.code, "declined");
    assert_eq!(failed.amount.amount, 6079);
    let hold = app.wait_for::<OnHold>(declined).await;
    assert_eq!(hold.stage, "billing");
    assert_eq!(hold.reason.code, "declined");
    assert_eq!(
        app.wait_for::<Failed>(broke).await.code,
        "insufficient_funds"
    );
    assert_eq!(
        app.wait_for::<OnHold>(broke).await.reason.code,
        "insufficient_funds"
    );

    // Delivered all the same: the invoice is issued for a person to collect, nothing is charged.
    app.publish(&delivered(declined)).await;
    orderflow_runtime::testing::eventually("the invoice is issued", WAIT, || {
        let app = &app;
        async move {
            let mut db = app.db().await;
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM invoices WHERE order_id = $1")
                .bind(declined)
                .fetch_one(&mut db)
                .await
                .expect("count")
                == 1
        }
    })
    .await;
    app.drain_with_a_marker_order().await;
    assert!(app.published::<Paid>(declined).is_empty());
    assert!(app.published::<Invoiced>(declined).is_empty());
    assert!(app.published::<Authorized>(declined).is_empty());
    assert_eq!(payment_status(&app, declined).await, "failed");
    let payments = app
        .get_json(&format!("/v1/payments?order_id={broke}"))
        .await;
    assert_eq!(
        payments["payments"][0]["failure"]["code"],
        "insufficient_funds"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_declined_and_methods_without_a_provider_are_authorised() {
    let mut app = spawn_app().await;
    let forged = Uuid::now_v7();
    let on_account = Uuid::now_v7();
    app.publish(&verified(forged, &eur_card_order("tok_made_up")))
        .await;
    let mut invoice_order = eur_card_order("unused");
    invoice_order.payment.method = PaymentMethod::Invoice;
    invoice_order.payment.token = None;
    app.publish(&verified(on_account, &invoice_order)).await;

    assert_eq!(app.wait_for::<Failed>(forged).await.code, "invalid_token");
    let authorized = app.wait_for::<Authorized>(on_account).await;
    assert_eq!(authorized.method, PaymentMethod::Invoice);
    assert_eq!(authorized.provider_reference, "no-authorization-needed");
    assert_eq!(authorized.amount.amount, 6079);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_has_its_authorisation_voided_and_is_never_charged() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();
    app.publish(&verified(order_id, &eur_card_order("tok_visa")))
        .await;
    app.wait_for::<Authorized>(order_id).await;

    // Only shipping's decision counts: a request alone changes nothing.
    let request = CancelRequested {
        reason: "changed my mind".into(),
        requested_by: None,
    };
    app.publish(&Envelope::new("order-intake", order_id, request))
        .await;
    let cancelled = Cancelled {
        reason: "changed my mind".into(),
    };
    app.publish(&Envelope::new("shipping", order_id, cancelled))
        .await;
    let voided = app.wait_for::<Voided>(order_id).await;
    assert_eq!(voided.amount.amount, 6079);
    assert!(
        voided.reason.contains("changed my mind"),
        "{}",
        voided.reason
    );
    assert_eq!(payment_status(&app, order_id).await, "voided");
    // A late delivery does not charge it.
    app.publish(&delivered(order_id)).await;
    app.drain_with_a_marker_order().await;
    assert!(app.published::<Paid>(order_id).is_empty());
    assert!(app.published::<Invoiced>(order_id).is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_voids_the_authorisation_and_is_never_invoiced() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();
    app.publish(&verified(order_id, &eur_card_order("tok_visa")))
        .await;
    app.wait_for::<Authorized>(order_id).await;

    let failed = DeliveryFailed {
        shipment_id: Uuid::now_v7(),
        status: "return_to_sender".into(),
        reason: "address unknown".into(),
    };
    app.publish(&Envelope::new("shipping", order_id, failed))
        .await;
    orderflow_runtime::testing::eventually("the payment is voided", WAIT, || {
        let app = &app;
        async move { payment_status(app, order_id).await == "voided" }
    })
    .await;
    // A late order.delivered of the same order does not invoice it either.
    app.publish(&delivered(order_id)).await;
    app.drain_with_a_marker_order().await;
    assert!(app.published::<Invoiced>(order_id).is_empty());
    let mut db = app.db().await;
    let invoices: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&mut db)
        .await
        .expect("count");
    assert_eq!(invoices, 0);
    app.stop().await;
}

/// The simulated card provider, counting the authorisations it is asked for.
struct Counting {
    calls: Arc<AtomicUsize>,
}

impl PaymentConnector for Counting {
    fn name(&self) -> &'static str {
        "sim_card"
    }

    fn authorize<'a>(&'a self, request: &'a AuthorizeRequest) -> Answer<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        SimCard.authorize(request)
    }

    fn capture<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a> {
        SimCard.capture(request)
    }

    fn void<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a> {
        SimCard.void(request)
    }

    fn refund<'a>(&'a self, request: &'a SettleRequest) -> Answer<'a> {
        SimCard.refund(request)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_is_retried_up_to_the_delivery_limit_and_charges_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let tune = |s: orderflow_runtime::Settings| s.with("amqp.delivery_limit", 3).expect("settings");
    let connectors = || {
        let counting = Counting {
            calls: calls.clone(),
        };
        Connectors::builtin().with(PaymentMethod::Card, Arc::new(counting))
    };
    let mut app = spawn_with(1, tune, connectors).await;
    let dead_key = format!("{}{}", app.env.prefix, billing::ORDERS_QUEUE);
    let mut dead_letters = app.env.probe(&[(Exchange::DeadLetters, &dead_key)]).await;
    let order_id = Uuid::now_v7();

    app.publish(&verified(order_id, &eur_card_order("tok_transient")))
        .await;
    let (_, dead) = dead_letters.next(WAIT).await;
    assert_eq!(dead.order_id, order_id);
    assert!(
        calls.load(Ordering::SeqCst) > 1,
        "the provider was asked again"
    );

    app.drain_with_a_marker_order().await;
    assert!(app.published::<Authorized>(order_id).is_empty());
    assert!(app.published::<Failed>(order_id).is_empty());
    let payments = app
        .get_json(&format!("/v1/payments?order_id={order_id}"))
        .await;
    assert_eq!(payments["payments"], serde_json::json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_after_payment_is_refunded_in_full_with_a_credit_note() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();
    app.publish(&verified(order_id, &eur_card_order("tok_visa")))
        .await;
    app.wait_for::<Authorized>(order_id).await;
    app.publish(&delivered(order_id)).await;
    let paid = app.wait_for::<Paid>(order_id).await;

    let cancelled = Cancelled {
        reason: "arrived broken".into(),
    };
    app.publish(&Envelope::new("shipping", order_id, cancelled))
        .await;
    let refunded = app.wait_for::<Refunded>(order_id).await;
    assert_eq!(refunded.amount.amount, 6079);
    let number = refunded.credit_note_number.expect("a credit note");
    assert!(number.starts_with("CN-"), "{number}");
    let note = app.get_json(&format!("/v1/invoices/{number}")).await;
    assert_eq!(note["kind"], "credit_note");
    assert_eq!(note["corrects"], paid.invoice_number.as_str());
    assert_eq!(amount(&note["totals"]["gross"], "EUR"), 6079);
    let payments = app
        .get_json(&format!("/v1/payments?order_id={order_id}"))
        .await;
    assert_eq!(amount(&payments["payments"][0]["refunded"], "EUR"), 6079);
    app.drain_with_a_marker_order().await;
    assert_eq!(app.published::<Refunded>(order_id).len(), 1);
    app.stop().await;
}
