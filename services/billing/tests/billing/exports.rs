//! What leaves billing for people and other systems: the printable invoice and the CSV export
//! for accounting.

use chrono::Utc;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounting_export_lists_invoices_and_credit_notes_with_negative_amounts() {
    let mut app = spawn_app().await;
    let (order_id, invoice) = paid_card_order(&mut app).await;
    let refund = json!({"lines": [{"position": 3, "quantity": 1}], "reason": "broken, sorry"});
    let response = app
        .post(&format!("/v1/orders/{order_id}/refunds"), &refund)
        .await;
    assert_eq!(response.status(), 201);
    let note: serde_json::Value = response.json().await.expect("JSON");
    let note = note["credit_note_number"]
        .as_str()
        .expect("number")
        .to_owned();

    let today = Utc::now().date_naive();
    let response = app
        .get(&format!("/v1/invoices?from={today}&to={today}"), STAFF_KEY)
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let csv = response.text().await.expect("body");
    let rows: Vec<Vec<&str>> = csv
        .split_terminator("\r\n")
        .map(|r| r.split(',').collect())
        .collect();
    assert_eq!(
        rows[0],
        billing::accounting::HEADER.to_vec(),
        "the header names the columns"
    );
    assert_eq!(rows.len(), 3, "{csv}");
    let (inv, cn) = (&rows[1], &rows[2]);
    assert_eq!(inv[..2], ["invoice", invoice.as_str()]);
    assert_eq!(inv[7..12], ["card", "EUR", "53.50", "7.29", "60.79"]);
    assert_eq!(cn[..2], ["credit_note", note.as_str()]);
    assert_eq!(cn[4], invoice.as_str());
    assert_eq!(cn[9..12], ["-12.30", "-2.34", "-14.64"]);

    let yesterday = today.pred_opt().expect("a day before");
    let empty = app
        .get(
            &format!("/v1/invoices?from={yesterday}&to={yesterday}"),
            STAFF_KEY,
        )
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(empty.lines().count(), 1, "only the header: {empty}");
    let bad = app
        .get("/v1/invoices?from=2026-13-01&to=2026-01-01", STAFF_KEY)
        .await;
    assert_eq!(bad.status(), 422);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_prints_as_an_html_document() {
    let mut app = spawn_app().await;
    let (_, invoice) = paid_card_order(&mut app).await;
    for (path, accept) in [
        (format!("/v1/invoices/{invoice}"), "text/html"),
        (format!("/v1/invoices/{invoice}.html"), "*/*"),
    ] {
        let response = reqwest::Client::new()
            .get(format!("http://{}{path}", app.addr))
            .header("Authorization", STAFF_KEY)
            .header("Accept", accept)
            .send()
            .await
            .expect("HTTP");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("type")
                .starts_with("text/html")
        );
        let page = response.text().await.expect("page");
        assert!(page.starts_with("<!DOCTYPE html>"));
        for text in [
            invoice.as_str(),
            "Hardcover",
            "60.79 EUR",
            "19 %",
            "Ann Example",
        ] {
            assert!(page.contains(text), "{text} missing from {page}");
        }
    }
    app.stop().await;
}
