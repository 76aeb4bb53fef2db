//! Invoices: issued once on delivery, numbered without gaps, with lines that add up.

use std::collections::BTreeSet;

use chrono::Datelike;
use orderflow_messages::order::{Invoiced, Paid};
use orderflow_messages::payment::Authorized;
use orderflow_messages::types::PaymentMethod;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_card_order_is_invoiced_and_paid_once_with_lines_that_add_up() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();

    app.publish(&verified(order_id, &eur_card_order("tok_visa")))
        .await;
    let authorized = app.wait_for::<Authorized>(order_id).await;
    // Reduced 7 %: 9.50 + 14.50 = 24.00 → 1.68. Standard 19 %: 2 × 12.30 + 4.90 shipping
    // = 29.50 → 5.605 → 5.61. Net 53.50 + tax 7.29 = 60.79.
    assert_eq!(authorized.amount.amount, 6079);
    assert_eq!(authorized.amount.currency.as_str(), "EUR");
    assert_eq!(authorized.method, PaymentMethod::Card);

    app.publish(&delivered(order_id)).await;
    let invoiced = app.wait_for::<Invoiced>(order_id).await;
    let paid = app.wait_for::<Paid>(order_id).await;
    let year = chrono::Utc::now().year();
    assert_eq!(invoiced.invoice_number, format!("INV-{year}-000001"));
    assert_eq!(
        (
            invoiced.net.amount,
            invoiced.tax.amount,
            invoiced.gross.amount
        ),
        (5350, 729, 6079)
    );
    assert_eq!(paid.invoice_number, invoiced.invoice_number);
    assert_eq!(paid.payment_id, authorized.payment_id);
    assert_eq!(paid.amount, authorized.amount);

    let invoice = app
        .get_json(&format!("/v1/invoices/{}", invoiced.invoice_number))
        .await;
    let lines = invoice["lines"].as_array().expect("lines");
    let described: Vec<(&str, i64, &str, i64, i64)> = lines
        .iter()
        .map(|l| {
            (
                l["description"].as_str().expect("description"),
                l["quantity"].as_i64().expect("quantity"),
                l["tax_rate"].as_str().expect("rate"),
                amount(&l["net"], "EUR"),
                amount(&l["tax"], "EUR"),
            )
        })
        .collect();
    assert_eq!(
        described,
        vec![
            ("Paperback", 1, "0.07", 950, 67),
            ("Hardcover", 1, "0.07", 1450, 101),
            ("Mug", 2, "0.19", 2460, 468),
            ("Shipping (standard)", 1, "0.19", 490, 93),
        ]
    );
    assert_eq!(lines[3]["kind"], "shipping");
    for line in lines {
        assert_eq!(
            amount(&line["net"], "EUR") + amount(&line["tax"], "EUR"),
            amount(&line["gross"], "EUR")
        );
    }
    let sum = |field: &str| lines.iter().map(|l| amount(&l[field], "EUR")).sum::<i64>();
    assert_eq!(amount(&invoice["totals"]["net"], "EUR"), sum("net"));
    assert_eq!(amount(&invoice["totals"]["tax"], "EUR"), sum("tax"));
    assert_eq!(amount(&invoice["totals"]["gross"], "EUR"), 6079);
    let breakdown: Vec<(&str, i64, i64)> = invoice["tax_breakdown"]
        .as_array()
        .expect("breakdown")
        .iter()
        .map(|g| {
            (
                g["tax_rate"].as_str().expect("rate"),
                amount(&g["net"], "EUR"),
                amount(&g["tax"], "EUR"),
            )
        })
        .collect();
    assert_eq!(breakdown, vec![("0.07", 2400, 168), ("0.19", 2950, 561)]);

    app.drain_with_a_marker_order().await;
    assert_eq!(app.published::<Invoiced>(order_id).len(), 1);
    assert_eq!(app.published::<Paid>(order_id).len(), 1);

    // An issued invoice is final: not even a direct UPDATE gets through.
    let mut db = app.db().await;
    let edit = sqlx::query("UPDATE invoices SET gross = 0 WHERE invoice_number = $1")
        .bind(&invoiced.invoice_number)
        .execute(&mut db)
        .await;
    assert!(edit.is_err(), "an issued invoice was changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_delivery_issues_one_invoice() {
    let mut app = spawn_app().await;
    let order_id = Uuid::now_v7();
    app.publish(&verified(order_id, &eur_card_order("tok_mastercard")))
        .await;
    app.wait_for::<Authorized>(order_id).await;

    let delivery = delivered(order_id);
    app.publish(&delivery).await;
    app.publish(&delivery).await;
    // The same fact told again in a new message, as a carrier replaying its events would.
    app.publish(&delivered(order_id)).await;
    app.wait_for::<Paid>(order_id).await;
    app.drain_with_a_marker_order().await;

    assert_eq!(app.published::<Invoiced>(order_id).len(), 1);
    assert_eq!(app.published::<Paid>(order_id).len(), 1);
    let mut db = app.db().await;
    let invoices: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&mut db)
        .await
        .expect("count");
    assert_eq!(invoices, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_delivered_at_once_to_two_replicas_get_consecutive_numbers_without_gaps() {
    // Small prefetch and batches spread the deliveries over both replicas.
    let tune = |s: orderflow_runtime::Settings| {
        s.with("amqp.prefetch", 2)
            .and_then(|s| s.with("amqp.batch_size", 2))
            .expect("settings")
    };
    let mut app = spawn_with(2, tune, billing::connector::Connectors::builtin).await;
    let orders: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    for id in &orders {
        let method = if id.as_u128() % 2 == 0 {
            PaymentMethod::Invoice
        } else {
            PaymentMethod::Card
        };
        let order = order(
            "EUR",
            "FR",
            method,
            Some("tok_visa"),
            &[("TEA-1", "Tea", 3, 499, "reduced")],
        );
        app.publish(&verified(*id, &order)).await;
    }
    for id in &orders {
        app.wait_for::<Authorized>(*id).await;
    }
    let deliveries: Vec<_> = orders
        .iter()
        .map(|id| {
            let (publisher, envelope) = (app.publisher.clone(), delivered(*id));
            tokio::spawn(async move { publisher.publish(&envelope, None).await })
        })
        .collect();
    for delivery in deliveries {
        delivery.await.expect("joined").expect("published");
    }

    let mut numbers = BTreeSet::new();
    for id in &orders {
        numbers.insert(app.wait_for::<Invoiced>(*id).await.invoice_number);
        // Invoices paid by transfer wait for the money; cards are taken at once.
        if id.as_u128() % 2 == 1 {
            app.wait_for::<Paid>(*id).await;
        }
    }
    let year = chrono::Utc::now().year();
    let expected: BTreeSet<String> = (1..=20).map(|n| format!("INV-{year}-{n:06}")).collect();
    assert_eq!(numbers, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_three_decimal_currencies_are_totalled_in_their_own_minor_units() {
    let mut app = spawn_app().await;
    let yen = Uuid::now_v7();
    let dinar = Uuid::now_v7();
    // Japan, default rates: standard 20 % on 3 × ¥1980 + ¥490 shipping = ¥6430 → ¥1286;
    // reduced 10 % on ¥333 → 33.3 → ¥33. Net 6763 + tax 1319 = 8082.
    let jpy = order(
        "JPY",
        "JP",
        PaymentMethod::Card,
        Some("tok_visa"),
        &[
            ("KETTLE", "Kettle", 3, 1980, "standard"),
            ("RICE", "Rice", 1, 333, "reduced"),
        ],
    );
    // Kuwait, default rates: standard 20 % on 2 × 12.345 + 0.490 = 25.180 KWD → 5.036;
    // reduced 10 % on 1.005 → 0.1005 → 0.101 (half away from zero). Net 26.185 + 5.137 = 31.322.
    let kwd = order(
        "KWD",
        "KW",
        PaymentMethod::BankTransfer,
        None,
        &[
            ("LAMP", "Lamp", 2, 12_345, "standard"),
            ("DATES", "Dates", 1, 1005, "reduced"),
        ],
    );
    app.publish(&verified(yen, &jpy)).await;
    app.publish(&verified(dinar, &kwd)).await;
    assert_eq!(app.wait_for::<Authorized>(yen).await.amount.amount, 8082);
    let kwd_authorized = app.wait_for::<Authorized>(dinar).await;
    assert_eq!(kwd_authorized.amount.amount, 31_322);
    assert_eq!(kwd_authorized.provider_reference, "no-authorization-needed");

    app.publish(&delivered(yen)).await;
    app.publish(&delivered(dinar)).await;
    let yen_invoice = app.wait_for::<Invoiced>(yen).await;
    let kwd_invoice = app.wait_for::<Invoiced>(dinar).await;
    assert_eq!(
        (
            yen_invoice.net.amount,
            yen_invoice.tax.amount,
            yen_invoice.gross.amount
        ),
        (6763, 1319, 8082)
    );
    assert_eq!(yen_invoice.gross.currency.as_str(), "JPY");
    assert_eq!(
        (
            kwd_invoice.net.amount,
            kwd_invoice.tax.amount,
            kwd_invoice.gross.amount
        ),
        (26_185, 5137, 31_322)
    );
    assert_eq!(kwd_invoice.gross.to_string(), "31.322 KWD");
    assert_eq!(app.wait_for::<Paid>(dinar).await.amount.amount, 31_322);

    let invoice = app
        .get_json(&format!("/v1/invoices/{}", kwd_invoice.invoice_number))
        .await;
    let taxes: Vec<i64> = invoice["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| amount(&l["tax"], "KWD"))
        .collect();
    assert_eq!(taxes.iter().sum::<i64>(), 5137);
    app.stop().await;
}
