//! Importing orders keyed in by staff, as CSV or JSON Lines.

use serde_json::{Value, json};

use crate::helpers::{App, SHOP, STAFF, an_order};

const HEADER: &str = "external_reference,channel,customer_email,customer_name,currency,sku,\
quantity,unit_price,customisations,shipping_name,shipping_line1,shipping_postal_code,\
shipping_city,shipping_country,shipping_method,payment_method";

fn row(reference: &str, email: &str, sku: &str, quantity: &str) -> String {
    format!(
        "{reference},phone,{email},\"Example, Ann\",EUR,{sku},{quantity},1250,engrave A|gift wrap,\
         Ann Example,Hauptstr. 1,10115,Berlin,DE,standard,invoice"
    )
}

async fn import(app: &App, content_type: &str, body: String) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/v1/orders/import"))
        .bearer_auth(STAFF)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("import");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn outcomes(report: &Value) -> Vec<(u64, String)> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().unwrap_or(0),
                r["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_import_creates_the_good_orders_reports_the_bad_rows_and_a_second_run_creates_nothing()
 {
    let app = App::spawn().await;
    // Taken on the phone earlier and keyed in one at a time.
    let mut earlier = an_order("PH-3");
    earlier["channel"] = json!("phone");
    let existing = app.place_ok(&earlier).await;

    let csv = [
        HEADER.to_owned(),
        row("PH-1", "ann@example.com", "MUG-BLUE", "2"),
        row("PH-1", "ann@example.com", "TEA-EARLGREY", "1"),
        row("PH-2", "not-an-address", "MUG-BLUE", "0"),
        row("PH-3", "ann@example.com", "MUG-BLUE", "1"),
        row("PH-4", "bob@example.com", "MUG-RED", "1"),
        row("PH-5", "eve@example.com", "MUG-BLUE", "1"),
        row("PH-5", "eve@example.com", "MUG-BLUE", "lots"),
    ]
    .join("\r\n");

    let (status, report) = import(&app, "text/csv", csv.clone()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["summary"],
        json!({"created": 3, "duplicates": 1, "invalid": 3})
    );
    assert_eq!(
        outcomes(&report),
        [
            (2, "created".to_owned()),
            (3, "created".to_owned()),
            (4, "invalid".to_owned()),
            (5, "duplicate".to_owned()),
            (6, "created".to_owned()),
            (7, "invalid".to_owned()),
            (8, "invalid".to_owned()),
        ]
    );
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(
        rows[0]["order_id"], rows[1]["order_id"],
        "one order, two lines"
    );
    assert_eq!(rows[3]["order_id"], existing.to_string());
    let bad: Vec<(&str, &str)> = rows[2]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or(""),
                e["rule"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(bad, [("customer_email", "format"), ("quantity", "range")]);
    assert_eq!(rows[6]["errors"][0]["field"], "quantity");
    assert_eq!(rows[6]["errors"][0]["rule"], "type");
    assert_eq!(
        rows[5]["errors"][0]["rule"], "order",
        "its sibling row is to blame"
    );

    let id = rows[0]["order_id"].as_str().expect("id");
    let order = app.order_as(id, STAFF).await;
    assert_eq!(order["channel"], "phone");
    assert_eq!(order["customer"]["name"], "Example, Ann");
    assert_eq!(order["lines"][1]["sku"], "TEA-EARLGREY");
    assert_eq!(
        order["lines"][0]["customisations"],
        json!(["engrave A", "gift wrap"])
    );
    assert_eq!(order["timeline"][0]["requested_by"], "staff");

    let before = app.count("SELECT count(*) FROM orders").await;
    let (status, again) = import(&app, "text/csv", csv).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["summary"],
        json!({"created": 0, "duplicates": 4, "invalid": 3})
    );
    assert_eq!(app.count("SELECT count(*) FROM orders").await, before);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_lines_import_reports_each_line_and_needs_staff_and_a_known_format() {
    let app = App::spawn().await;
    let good = an_order("EM-1");
    let mut invalid = an_order("EM-2");
    invalid["currency"] = json!("EURO");
    let mut unreferenced = an_order("x");
    unreferenced["external_reference"] = Value::Null;
    let body = format!(
        "{good}\n\n{{\"channel\": \"email\", \"colour\": \"blue\"}}\n{invalid}\nnot json\n{unreferenced}\n"
    );

    let (status, report) = import(&app, "application/x-ndjson", body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        outcomes(&report),
        [
            (1, "created".to_owned()),
            (3, "invalid".to_owned()),
            (4, "invalid".to_owned()),
            (5, "invalid".to_owned()),
            (6, "invalid".to_owned()),
        ]
    );
    let rows = report["rows"].as_array().expect("rows");
    assert!(
        rows[1]["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("colour")
    );
    assert_eq!(rows[2]["errors"][0]["field"], "currency");
    assert_eq!(rows[4]["errors"][0]["field"], "external_reference");
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    let shop = app
        .client
        .post(app.url("/v1/orders/import"))
        .bearer_auth(SHOP)
        .header("content-type", "text/csv")
        .body(HEADER)
        .send()
        .await
        .expect("import");
    assert_eq!(shop.status(), 403);
    // Imports may be larger than the 1 MiB other requests are held to.
    let padded = format!("{}\n{}", an_order("EM-3"), "\n".repeat(2 * 1024 * 1024));
    let (status, report) = import(&app, "application/x-ndjson", padded).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["summary"]["created"], 1);
    let (status, _) = import(&app, "application/xml", "<orders/>".into()).await;
    assert_eq!(status, 415);
    let (status, problem) =
        import(&app, "text/csv", "external_reference,colour\nA,blue".into()).await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("colour"),
        "{problem}"
    );
    app.stop().await;
}
