//! Every payment method end to end: invoices paid by transfer (partial payments, overpayment,
//! reminders), cash on delivery, prepaid; a decline followed by a new method; a hold that is
//! never resolved.

use orderflow_messages::Envelope;
use orderflow_messages::order::{CancelRequested, Invoiced, OnHold, Paid, PaymentMethodChanged};
use orderflow_messages::payment::{Authorized, Failed};
use orderflow_messages::types::{Payment, PaymentMethod};
use orderflow_runtime::Settings;
use orderflow_runtime::testing::eventually;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

/// Two books and a mug to Germany (60.79 EUR with shipping), paid with `method`.
fn eur_order(method: PaymentMethod, token: Option<&str>) -> orderflow_messages::order::Verified {
    let mut order = eur_card_order("unused");
    order.payment = Payment {
        method,
        token: token.map(str::to_owned),
    };
    order
}

fn tuned(pairs: &'static [(&'static str, i64)]) -> impl Fn(Settings) -> Settings {
    move |mut s: Settings| {
        for (key, value) in pairs {
            s = s.with(key, *value).expect("settings");
        }
        s
    }
}

/// Runs an order of `method` to its invoice; returns the invoice number.
async fn invoiced(app: &mut App, order_id: Uuid, method: PaymentMethod) -> String {
    let token = (method == PaymentMethod::Card).then_some("tok_visa");
    app.publish(&verified(order_id, &eur_order(method, token)))
        .await;
    app.wait_for::<Authorized>(order_id).await;
    app.publish(&delivered(order_id)).await;
    app.wait_for::<Invoiced>(order_id).await.invoice_number
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_paid_by_transfer_is_due_in_the_configured_days_and_partial_payments_add_up() {
    let mut app = spawn_with(
        1,
        tuned(&[("billing.invoice_due_days", 30)]),
        billing::connector::Connectors::builtin,
    )
    .await;
    let order_id = Uuid::now_v7();
    let number = invoiced(&mut app, order_id, PaymentMethod::Invoice).await;
    let invoice = app.get_json(&format!("/v1/invoices/{number}")).await;
    assert_eq!(invoice["payment_method"], "invoice");
    let issued: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(invoice["issued_at"].clone()).expect("issued_at");
    let due: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(invoice["due_at"].clone()).expect("due_at");
    assert_eq!((due - issued).num_days(), 30);

    let transfer = |amount: i64, reference: &str| {
        json!({"invoice_number": number, "amount": {"amount": amount, "currency": "EUR"},
               "reference": reference})
    };
    let first = app.post("/v1/payments", &transfer(3000, "BANK-1")).await;
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.expect("JSON");
    assert_eq!(first["status"], "partially_paid");
    assert_eq!(amount(&first["outstanding"], "EUR"), 3079);

    // The same bank line imported twice adds nothing.
    let again = app.post("/v1/payments", &transfer(3000, "BANK-1")).await;
    assert_eq!(again.status(), 200);
    let again: serde_json::Value = again.json().await.expect("JSON");
    assert_eq!(again["duplicate"], true);
    assert_eq!(amount(&again["received"], "EUR"), 3000);

    let rest = app.post("/v1/payments", &transfer(3079, "BANK-2")).await;
    assert_eq!(rest.status(), 201);
    let rest: serde_json::Value = rest.json().await.expect("JSON");
    assert_eq!(rest["status"], "paid");
    let paid = app.wait_for::<Paid>(order_id).await;
    assert_eq!(paid.amount.amount, 6079);
    assert_eq!(paid.invoice_number, number);

    let foreign = json!({"invoice_number": number, "amount": {"amount": 1, "currency": "USD"},
                         "reference": "BANK-3"});
    assert_eq!(app.post("/v1/payments", &foreign).await.status(), 422);
    let unknown = json!({"invoice_number": "INV-1999-000001",
                         "amount": {"amount": 1, "currency": "EUR"}, "reference": "BANK-4"});
    assert_eq!(app.post("/v1/payments", &unknown).await.status(), 422);
    app.drain_with_a_marker_order().await;
    assert_eq!(app.published::<Paid>(order_id).len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overpaid_invoice_is_paid_once_and_the_surplus_flagged() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();
    let number = invoiced(&mut app, order_id, PaymentMethod::Invoice).await;
    let body = json!({"invoice_number": number, "amount": {"amount": 7000, "currency": "EUR"},
                      "reference": "BANK-9"});
    let response = app.post("/v1/payments", &body).await;
    assert_eq!(response.status(), 201);
    let balance: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(balance["status"], "overpaid");
    assert_eq!(amount(&balance["overpaid"], "EUR"), 7000 - 6079);
    assert_eq!(amount(&balance["outstanding"], "EUR"), 0);
    assert_eq!(app.wait_for::<Paid>(order_id).await.amount.amount, 6079);

    // A card order's invoice is not paid by transfer.
    let card = Uuid::now_v7();
    let card_invoice = invoiced(&mut app, card, PaymentMethod::Card).await;
    let body = json!({"invoice_number": card_invoice,
                      "amount": {"amount": 100, "currency": "EUR"}, "reference": "BANK-10"});
    assert_eq!(app.post("/v1/payments", &body).await.status(), 409);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_invoice_gets_one_reminder_even_with_two_replicas() {
    let tune = tuned(&[
        ("billing.invoice_due_days", 0),
        ("billing.deadline_check_secs", 1),
    ]);
    let mut app = spawn_with(2, tune, billing::connector::Connectors::builtin).await;
    let order_id = Uuid::now_v7();
    let number = invoiced(&mut app, order_id, PaymentMethod::Invoice).await;
    let reminders = || {
        let app = &app;
        let number = number.clone();
        async move {
            let mut db = app.db().await;
            sqlx::query_as::<_, (i32, i64)>(
                "SELECT level, outstanding FROM payment_reminders WHERE invoice_number = $1",
            )
            .bind(&number)
            .fetch_all(&mut db)
            .await
            .expect("reminders")
        }
    };
    eventually("a reminder is recorded", WAIT, || async {
        !reminders().await.is_empty()
    })
    .await;
    assert_eq!(reminders().await, vec![(1, 6079)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cash_on_delivery_is_settled_by_the_delivery() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();
    let number = invoiced(&mut app, order_id, PaymentMethod::CashOnDelivery).await;
    let paid = app.wait_for::<Paid>(order_id).await;
    assert_eq!(paid.amount.amount, 6079);
    assert_eq!(paid.invoice_number, number);
    let invoice = app.get_json(&format!("/v1/invoices/{number}")).await;
    assert_eq!(invoice["payment_method"], "cash_on_delivery");
    assert!(invoice.get("due_at").is_none(), "{invoice}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepaid_order_is_reconciled_by_the_shop_s_reference() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();
    app.publish(&verified(
        order_id,
        &eur_order(PaymentMethod::Prepaid, Some("SHOP-4711")),
    ))
    .await;
    let authorized = app.wait_for::<Authorized>(order_id).await;
    assert_eq!(authorized.provider_reference, "SHOP-4711");
    app.publish(&delivered(order_id)).await;
    assert_eq!(app.wait_for::<Paid>(order_id).await.amount.amount, 6079);
    let found = app.get_json("/v1/payments?reference=SHOP-4711").await;
    assert_eq!(found["payments"][0]["order_id"], order_id.to_string());
    assert_eq!(found["payments"][0]["status"], "captured");

    // Without the shop's reference there is nothing to reconcile: declined, on hold.
    let unreferenced = Uuid::now_v7();
    app.publish(&verified(
        unreferenced,
        &eur_order(PaymentMethod::Prepaid, None),
    ))
    .await;
    assert_eq!(
        app.wait_for::<Failed>(unreferenced).await.code,
        "missing_reference"
    );
    app.wait_for::<OnHold>(unreferenced).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_followed_by_a_new_method_is_authorised_again_and_paid() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();
    app.publish(&verified(order_id, &eur_card_order("tok_decline")))
        .await;
    app.wait_for::<Failed>(order_id).await;
    app.wait_for::<OnHold>(order_id).await;

    let changed = PaymentMethodChanged {
        payment: Payment {
            method: PaymentMethod::Card,
            token: Some("tok_visa".into()),
        },
    };
    let change = Envelope::new("order-intake", order_id, changed);
    app.publish(&change).await;
    // A duplicate of the change makes no third attempt.
    app.publish(&change).await;
    let authorized = app.wait_for::<Authorized>(order_id).await;
    assert_eq!(authorized.amount.amount, 6079);
    app.publish(&delivered(order_id)).await;
    let paid = app.wait_for::<Paid>(order_id).await;
    assert_eq!(paid.payment_id, authorized.payment_id);

    let payments = app
        .get_json(&format!("/v1/payments?order_id={order_id}"))
        .await;
    let attempts: Vec<(i64, String)> = payments["payments"]
        .as_array()
        .expect("payments")
        .iter()
        .map(|p| {
            (
                p["attempt"].as_i64().expect("attempt"),
                p["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![(0, "failed".to_owned()), (1, "captured".to_owned())]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_not_resolved_in_time_asks_once_to_cancel_the_order() {
    let tune = tuned(&[
        ("billing.hold_timeout_secs", 1),
        ("billing.deadline_check_secs", 1),
    ]);
    let mut app = spawn_with(2, tune, billing::connector::Connectors::builtin).await;
    let order_id = Uuid::now_v7();
    app.publish(&verified(
        order_id,
        &eur_card_order("tok_insufficient_funds"),
    ))
    .await;
    app.wait_for::<OnHold>(order_id).await;
    let request = app.wait_for::<CancelRequested>(order_id).await;
    assert_eq!(request.requested_by.as_deref(), Some("billing"));
    assert!(
        request.reason.contains("not resolved"),
        "{}",
        request.reason
    );
    app.drain_with_a_marker_order().await;
    assert_eq!(app.published::<CancelRequested>(order_id).len(), 1);
    app.stop().await;
}
