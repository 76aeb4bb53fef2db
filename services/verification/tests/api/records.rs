//! The records people keep through the API: products, warehouses, receipts.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN, App, STAFF};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_with_received_stock_shows_in_the_stock_levels() {
    let app = App::spawn().await;
    let body = json!({"name": "Mug", "unit_price": 1200, "currency": "EUR",
        "tax_class": "reduced", "weight_grams": 350});
    let (created, product) = app
        .call(
            Method::PUT,
            "/v1/products/MUG-1",
            Some(ADMIN),
            Some(body.clone()),
        )
        .await;
    assert_eq!(created, StatusCode::CREATED, "{product}");
    assert_eq!(product["active"], true);
    let (replaced, _) = app
        .call(Method::PUT, "/v1/products/MUG-1", Some(ADMIN), Some(body))
        .await;
    assert_eq!(replaced, StatusCode::OK);
    app.warehouse("BER").await;

    app.receive("BER", "MUG-1", 10).await;
    let (status, receipt) = app
        .call(
            Method::POST,
            "/v1/warehouses/BER/receipts",
            Some(ADMIN),
            Some(json!({"lines": [{"sku": "MUG-1", "quantity": 5}], "reason": "delivery note 7"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["stock"][0]["on_hand"], 15);

    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 15, 0, 15)]);
    let mut db = app.env.connect_db("verification").await;
    let ledger: Vec<(i64, String)> = sqlx::query_as(
        "SELECT delta_on_hand, reason FROM stock_movements WHERE sku = 'MUG-1' ORDER BY id",
    )
    .fetch_all(&mut db)
    .await
    .expect("ledger");
    assert_eq!(
        ledger,
        vec![
            (10, "receipt".into()),
            (5, "receipt: delivery note 7".into())
        ]
    );
    let (status, listed) = app
        .call(Method::GET, "/v1/products?limit=10", Some(STAFF), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["items"][0]["sku"], "MUG-1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_product_is_refused_listing_every_field() {
    let app = App::spawn().await;
    let (status, problem) = app
        .call(
            Method::PUT,
            "/v1/products/MUG-1",
            Some(ADMIN),
            Some(json!({"unit_price": -5, "currency": "EURO", "tax_class": "luxury"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        vec![
            "name",
            "unit_price",
            "currency",
            "tax_class",
            "weight_grams"
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_with_an_unknown_sku_is_refused_naming_the_line() {
    let app = App::spawn().await;
    app.product("MUG-1", 1200, "EUR").await;
    app.warehouse("BER").await;

    let (status, problem) = app
        .call(
            Method::POST,
            "/v1/warehouses/BER/receipts",
            Some(ADMIN),
            Some(
                json!({"lines": [{"sku": "MUG-1", "quantity": 4}, {"sku": "GHOST", "quantity": 1}],
                "reason": "delivery note 7"}),
            ),
        )
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "lines[1].sku");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("GHOST"))
    );
    // Nothing of the receipt was booked, not even its good line.
    assert_eq!(app.stock("MUG-1").await, vec![]);
    let (status, problem) = app
        .call(
            Method::POST,
            "/v1/warehouses/NOWHERE/receipts",
            Some(ADMIN),
            Some(json!({"lines": [{"sku": "MUG-1", "quantity": 4}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "warehouse");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_admin_role() {
    let app = App::spawn().await;
    let product = json!({"name": "Mug", "unit_price": 1200, "currency": "EUR",
        "tax_class": "standard", "weight_grams": 350});
    let writes = [
        (Method::PUT, "/v1/products/MUG-1", product),
        (Method::PUT, "/v1/warehouses/BER", json!({"name": "Berlin"})),
        (
            Method::PUT,
            "/v1/customers/c-1",
            json!({"name": "Ann", "email": "ann@example.com"}),
        ),
        (
            Method::POST,
            "/v1/warehouses/BER/receipts",
            json!({"lines": [{"sku": "MUG-1", "quantity": 1}]}),
        ),
        (
            Method::POST,
            "/v1/warehouses/BER/adjustments",
            json!({"sku": "MUG-1", "delta": 1, "reason": "count"}),
        ),
    ];
    for (method, path, body) in writes {
        let (as_staff, _) = app
            .call(method.clone(), path, Some(STAFF), Some(body.clone()))
            .await;
        assert_eq!(as_staff, StatusCode::FORBIDDEN, "{method} {path} as staff");
        let (anonymous, _) = app.call(method.clone(), path, None, Some(body)).await;
        assert_eq!(
            anonymous,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a key"
        );
    }
    // Staff may read.
    let (read, _) = app
        .call(Method::GET, "/v1/warehouses", Some(STAFF), None)
        .await;
    assert_eq!(read, StatusCode::OK);
    let (read, _) = app.call(Method::GET, "/v1/products", None, None).await;
    assert_eq!(read, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_is_stored_with_addresses_block_and_payment_methods() {
    let app = App::spawn().await;
    let body = json!({"name": "Ann Example", "email": "ann@example.com",
        "addresses": [{"name": "Ann Example", "line1": "Main St 1", "postal_code": "10115",
            "city": "Berlin", "country": "DE"}],
        "payment_methods": ["card", "invoice"]});
    let (created, customer) = app
        .call(Method::PUT, "/v1/customers/c-1", Some(ADMIN), Some(body))
        .await;
    assert_eq!(created, StatusCode::CREATED, "{customer}");
    let blocked = json!({"name": "Ann Example", "email": "ann@example.com",
        "blocked": true, "blocked_reason": "chargebacks"});
    let (replaced, _) = app
        .call(Method::PUT, "/v1/customers/c-1", Some(ADMIN), Some(blocked))
        .await;
    assert_eq!(replaced, StatusCode::OK);

    let (status, customer) = app
        .call(Method::GET, "/v1/customers/c-1", Some(STAFF), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&customer["blocked"], &customer["blocked_reason"]),
        (&json!(true), &json!("chargebacks"))
    );
    // Replaced as a whole: no list of methods means every method.
    assert!(customer.get("payment_methods").is_none(), "{customer}");
    let (missing, _) = app
        .call(Method::GET, "/v1/customers/c-2", Some(STAFF), None)
        .await;
    assert_eq!(missing, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogue_imported_from_csv_or_json_lines_reports_every_row() {
    let app = App::spawn().await;
    let csv = "sku,name,unit_price,currency,tax_class,weight_grams,length_mm,width_mm,height_mm,\
               allow_backorder,customisation_options\n\
               MUG-1,\"Mug, blue\",1200,EUR,reduced,350,100,80,60,yes,engraving|gift_wrap\n\
               HAT-1,Hat,twelve,EUR,standard,200,,,,no,\n\
               CAP-1,Cap,900,EURO,luxury,100,,,,,\n";
    let response = reqwest::Client::new()
        .post(format!("{}/v1/products/import", app.base))
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), StatusCode::OK);
    let report: serde_json::Value = response.json().await.expect("a report");
    assert_eq!(
        (&report["created"], &report["updated"], &report["failed"]),
        (&json!(1), &json!(0), &json!(2)),
        "{report}"
    );
    assert_eq!(report["rows"][0]["line"], 2);
    assert_eq!(report["rows"][1]["errors"][0]["field"], "unit_price");
    let fields: Vec<&str> = report["rows"][2]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["currency", "tax_class"]);

    let lines = "{\"sku\": \"MUG-1\", \"name\": \"Mug\", \"unit_price\": 1300, \"currency\": \"EUR\", \
                 \"tax_class\": \"reduced\", \"weight_grams\": 350}\n\
                 not json\n";
    let response = reqwest::Client::new()
        .post(format!("{}/v1/products/import", app.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .expect("import");
    let report: serde_json::Value = response.json().await.expect("a report");
    assert_eq!(
        (
            &report["updated"],
            &report["failed"],
            &report["rows"][1]["line"]
        ),
        (&json!(1), &json!(1), &json!(2)),
        "{report}"
    );
    let (_, mug) = app
        .call(Method::GET, "/v1/products/MUG-1", Some(STAFF), None)
        .await;
    assert_eq!(mug["unit_price"], 1300);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_stock_is_announced_once_per_crossing_and_listed_for_replenishment() {
    let app = App::spawn().await;
    let (status, body) = app
        .call(
            Method::PUT,
            "/v1/products/MUG-1",
            Some(ADMIN),
            Some(json!({"name": "Mug", "unit_price": 1200, "currency": "EUR",
                "tax_class": "standard", "weight_grams": 350,
                "reorder_point": 5, "reorder_quantity": 40})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 10).await;
    let mut probe = app.probe(&["stock.low", "order.verified"]).await;
    let adjust = |delta: i64| {
        app.call(
            Method::POST,
            "/v1/warehouses/BER/adjustments",
            Some(ADMIN),
            Some(json!({"sku": "MUG-1", "delta": delta, "reason": "count"})),
        )
    };

    // 10 → 4 crosses the line; 4 → 3 does not cross it again.
    assert_eq!(adjust(-6).await.0, StatusCode::OK);
    assert_eq!(adjust(-1).await.0, StatusCode::OK);
    let (status, low) = app
        .call(Method::GET, "/v1/stock/low", Some(STAFF), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            &low["items"][0]["sku"],
            &low["items"][0]["available"],
            &low["items"][0]["reorder_quantity"]
        ),
        (&json!("MUG-1"), &json!(3), &json!(40))
    );
    // Back above the line, then down again: a new crossing.
    app.receive("BER", "MUG-1", 10).await;
    app.place(crate::helpers::order("EUR", &[("MUG-1", 9, 1200)]))
        .await;

    let first = probe.next(crate::helpers::WAIT).await.1;
    assert_eq!(first.kind, "stock.low");
    assert_eq!(first.payload["available"], 4);
    let mut after = Vec::new();
    while after.len() < 2 {
        after.push(probe.next(crate::helpers::WAIT).await.1);
    }
    let kinds: Vec<&str> = after.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"order.verified"), "{kinds:?}");
    let again = after
        .iter()
        .find(|e| e.kind == "stock.low")
        .expect("a new crossing");
    assert_eq!(again.payload["available"], 4);
    app.stop().await;
}
