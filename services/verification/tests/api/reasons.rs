//! Every reason code an order can be rejected with, each naming its line or field.

use orderflow_messages::order::Rejected;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN, App, WAIT, order};

fn codes(rejected: &Rejected) -> Vec<(String, Option<u32>, Option<String>)> {
    rejected
        .reasons
        .iter()
        .map(|r| (r.code.clone(), r.line_no, r.field.clone()))
        .collect()
}

fn reason(
    code: &str,
    line: Option<u32>,
    field: Option<&str>,
) -> (String, Option<u32>, Option<String>) {
    (code.to_owned(), line, field.map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_breaking_every_rule_is_rejected_with_every_reason_at_once() {
    let app = App::spawn_replicas(1, |s| {
        s.with("verification.max_line_quantity", 5)
            .and_then(|s| s.with("verification.delivered_countries", "DE,AT"))
            .and_then(|s| s.with("verification.max_order_total.EUR", 10_000))
            .expect("settings")
    })
    .await;
    app.product("MUG-1", 1200, "EUR").await;
    app.product("HAT-US", 2500, "USD").await;
    app.product("PEN-1", 300, "EUR").await;
    app.product_with(
        "OLD-1",
        json!({"name": "Old", "unit_price": 100, "currency": "EUR", "tax_class": "standard",
            "weight_grams": 10, "active": false}),
    )
    .await;
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 100).await;
    let (status, body) = app
        .call(
            Method::PUT,
            "/v1/customers/c-42",
            Some(ADMIN),
            Some(json!({"name": "Ann Example", "email": "ann@example.com",
                "blocked": true, "blocked_reason": "unpaid invoices",
                "payment_methods": ["invoice"]})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let mut probe = app.probe(&["order.rejected", "order.verified"]).await;

    let mut placed = order(
        "EUR",
        &[
            ("GHOST", 1, 100),   // 1 unknown_sku
            ("MUG-1", 1, 999),   // 2 price_mismatch
            ("HAT-US", 1, 2500), // 3 currency_mismatch
            ("OLD-1", 1, 100),   // 4 inactive_sku
            ("MUG-1", 9, 1200),  // 5 quantity_limit
            ("MUG-1", 1, 1200),  // 6 duplicate_line (numbered 5 below), customisation
            ("PEN-1", 2, 300),   // 7 out_of_stock
        ],
    );
    placed.lines[5].line_no = 5;
    placed.lines[5].customisations = vec!["engraving: Ann".into()];
    placed.customer.customer_id = Some("c-42".into());
    placed.shipping_address.country =
        orderflow_messages::types::CountryCode::parse("FR").expect("a country");
    placed.shipping_address.line1 = " ".into();
    placed.payment.method = orderflow_messages::types::PaymentMethod::CashOnDelivery;
    placed.payment.token = None;
    app.place(placed).await;

    let rejected = probe.next_of::<Rejected>(WAIT).await.payload;
    assert_eq!(
        codes(&rejected),
        vec![
            reason("customer_blocked", None, Some("customer.customer_id")),
            reason("payment_method_not_allowed", None, Some("payment.method")),
            reason("address_incomplete", None, Some("shipping_address.line1")),
            reason(
                "country_not_delivered",
                None,
                Some("shipping_address.country")
            ),
            reason("order_total_limit", None, Some("lines")),
            reason("unknown_sku", Some(1), Some("lines[0].sku")),
            reason("price_mismatch", Some(2), Some("lines[1].unit_price")),
            reason("currency_mismatch", Some(3), Some("currency")),
            reason("inactive_sku", Some(4), Some("lines[3].sku")),
            reason("quantity_limit", Some(5), Some("lines[4].quantity")),
            reason("duplicate_line", Some(5), Some("lines[5].line_no")),
            reason(
                "customisation_not_offered",
                Some(5),
                Some("lines[5].customisations[0]")
            ),
            reason("out_of_stock", Some(7), None),
        ]
    );
    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 100, 0, 100)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_customers_empty_orders_and_unpayable_amounts_are_rejected() {
    let app = App::spawn().await;
    app.product("GOLD-1", i64::MAX / 2, "EUR").await;
    app.product("MUG-1", 1200, "EUR").await;
    app.warehouse("BER").await;
    app.receive("BER", "GOLD-1", 10).await;
    app.receive("BER", "MUG-1", 100).await;
    let mut probe = app.probe(&["order.rejected", "order.verified"]).await;

    let mut unknown = order("EUR", &[("MUG-1", 1, 1200)]);
    unknown.customer.customer_id = Some("nobody".into());
    app.place(unknown).await;
    let rejected = probe.next_of::<Rejected>(WAIT).await.payload;
    assert_eq!(
        codes(&rejected),
        vec![reason(
            "unknown_customer",
            None,
            Some("customer.customer_id")
        )]
    );

    app.place(order("EUR", &[])).await;
    let rejected = probe.next_of::<Rejected>(WAIT).await.payload;
    assert_eq!(
        codes(&rejected),
        vec![reason("empty_order", None, Some("lines"))]
    );

    app.place(order("EUR", &[("GOLD-1", 3, i64::MAX / 2)]))
        .await;
    let rejected = probe.next_of::<Rejected>(WAIT).await.payload;
    assert_eq!(
        codes(&rejected),
        vec![reason("amount_limit", None, Some("lines"))]
    );

    // Cash on delivery is accepted up to 1,000.00 EUR by default.
    let mut cash = order("EUR", &[("MUG-1", 90, 1200)]);
    cash.payment.method = orderflow_messages::types::PaymentMethod::CashOnDelivery;
    cash.payment.token = None;
    app.place(cash).await;
    let rejected = probe.next_of::<Rejected>(WAIT).await.payload;
    assert_eq!(
        codes(&rejected),
        vec![reason(
            "payment_method_not_allowed",
            None,
            Some("payment.method")
        )]
    );
    app.stop().await;
}
