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
