//! Coupons: kept by billing, applied when the order is verified, shown as discount lines taxed
//! per rate group; one that does not apply is named on the invoice, and the order goes on.

use orderflow_messages::order::{Invoiced, Paid, Verified};
use orderflow_messages::payment::Authorized;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

async fn put_coupon(app: &App, code: &str, body: Value) -> reqwest::Response {
    app.send(
        reqwest::Method::PUT,
        &format!("/v1/coupons/{code}"),
        ADMIN_KEY,
        &body,
    )
    .await
}

fn with_coupon(code: &str) -> Verified {
    let mut order = eur_card_order("tok_visa");
    order.coupon_code = Some(code.to_owned());
    order
}

/// Runs `order` to its invoice and returns the invoice.
async fn invoice_of(app: &mut App, order: &Verified) -> (Authorized, Value) {
    let order_id = Uuid::now_v7();
    app.publish(&verified(order_id, order)).await;
    let authorized = app.wait_for::<Authorized>(order_id).await;
    app.publish(&delivered(order_id)).await;
    let number = app.wait_for::<Invoiced>(order_id).await.invoice_number;
    app.wait_for::<Paid>(order_id).await;
    (
        authorized,
        app.get_json(&format!("/v1/invoices/{number}")).await,
    )
}

fn discount_lines(invoice: &Value) -> Vec<(String, i64, i64)> {
    invoice["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["kind"] == "discount")
        .map(|l| {
            (
                l["tax_rate"].as_str().expect("rate").to_owned(),
                amount(&l["net"], "EUR"),
                amount(&l["tax"], "EUR"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percentage_coupon_becomes_one_discount_line_per_tax_rate() {
    let mut app = spawn_app().await;
    let created = put_coupon(
        &app,
        "spring10",
        json!({"kind": "percent", "percent": "10"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let staff = app
        .send(
            reqwest::Method::PUT,
            "/v1/coupons/SPRING10",
            STAFF_KEY,
            &json!({"kind": "percent", "percent": "50"}),
        )
        .await;
    assert_eq!(staff.status(), 403);

    let (authorized, invoice) = invoice_of(&mut app, &with_coupon(" Spring10 ")).await;
    // Books 24.00 at 7 % less 2.40 → tax 1.51; mug 24.60 less 2.46 plus shipping 4.90 at
    // 19 % → 27.04 taxed 5.14.
    assert_eq!(
        discount_lines(&invoice),
        vec![
            ("0.07".to_owned(), -240, -17),
            ("0.19".to_owned(), -246, -47)
        ]
    );
    assert_eq!(amount(&invoice["totals"]["tax"], "EUR"), 151 + 514);
    assert_eq!(amount(&invoice["totals"]["gross"], "EUR"), 5529);
    assert_eq!(authorized.amount.amount, 5529);
    let lines_gross: i64 = invoice["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| amount(&l["gross"], "EUR"))
        .sum();
    assert_eq!(lines_gross, 5529);
    assert!(invoice.get("notes").is_none(), "{invoice}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_coupon_for_some_skus_discounts_only_their_lines() {
    let mut app = spawn_app().await;
    let body = json!({"kind": "fixed", "amount": 500, "currency": "EUR", "skus": ["MUG-1"],
                      "minimum_amount": 1000});
    assert_eq!(put_coupon(&app, "MUGS5", body).await.status(), 201);
    let (authorized, invoice) = invoice_of(&mut app, &with_coupon("MUGS5")).await;
    assert_eq!(
        discount_lines(&invoice),
        vec![("0.19".to_owned(), -500, -95)]
    );
    // Books 24.00 + 1.68; mug and shipping 29.50 − 5.00 = 24.50 + 4.66 (4.655 rounded up).
    assert_eq!(authorized.amount.amount, 2400 + 168 + 2450 + 466);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupon_that_does_not_apply_is_named_on_the_invoice_and_the_order_goes_on() {
    let mut app = spawn_app().await;
    let expired = json!({"kind": "percent", "percent": "20",
                         "valid_until": "2020-01-01T00:00:00Z"});
    assert_eq!(put_coupon(&app, "OLD20", expired).await.status(), 201);
    let minimum = json!({"kind": "percent", "percent": "20", "currency": "EUR",
                         "minimum_amount": 100000});
    assert_eq!(put_coupon(&app, "BIG20", minimum).await.status(), 201);
    let inactive = json!({"kind": "percent", "percent": "20", "active": false});
    assert_eq!(put_coupon(&app, "OFF20", inactive).await.status(), 201);

    for (code, why) in [
        ("OLD20", "expired"),
        ("BIG20", "below the minimum"),
        ("OFF20", "not active"),
        ("NOPE", "no such coupon"),
    ] {
        let (authorized, invoice) = invoice_of(&mut app, &with_coupon(code)).await;
        assert_eq!(authorized.amount.amount, 6079, "{code}");
        assert!(discount_lines(&invoice).is_empty(), "{code}");
        let note = invoice["notes"][0].as_str().unwrap_or_default();
        assert!(note.contains(code) && note.contains(why), "{code}: {note}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupon_that_breaks_the_rules_is_refused_field_by_field() {
    let app = spawn_app().await;
    let response = put_coupon(
        &app,
        "BAD",
        json!({"kind": "fixed", "amount": -5, "valid_from": "2026-02-01T00:00:00Z",
               "valid_until": "2026-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("problem");
    let text = problem.to_string();
    for field in ["amount", "currency", "valid_until"] {
        assert!(text.contains(field), "{field}: {text}");
    }
    assert_eq!(app.get("/v1/coupons/bad", STAFF_KEY).await.status(), 404);
    app.stop().await;
}
