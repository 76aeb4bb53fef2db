//! The ops console's queries against a real database: the flow board counts, per minute of the
//! last hour, the orders that moved into each status (an entry that leaves the status as it was
//! is no move, even when the entry before it is older than the hour), and the search finds an
//! order by id, external reference or customer e-mail.

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{App, STAFF, an_order};

/// Adds a timeline entry to `order` at `ago` seconds before now.
async fn entry(app: &App, order: Uuid, kind: &str, status: &str, ago: i64) {
    let mut db = app.db().await;
    sqlx::query(
        "INSERT INTO timeline (order_id, message_id, kind, status, producer, detail, occurred_at) \
         VALUES ($1, $2, $3, $4, 'test', '', now() - make_interval(secs => $5))",
    )
    .bind(order)
    .bind(Uuid::now_v7())
    .bind(kind)
    .bind(status)
    .bind(ago as f64)
    .execute(&mut db)
    .await
    .expect("timeline entry");
}

/// How many orders moved into `status` over the board's last hour.
fn reached(board: &Value, status: &str) -> i64 {
    board["last_hour"]["reached"][status]
        .as_array()
        .unwrap_or_else(|| panic!("no series for {status}: {board}"))
        .iter()
        .filter_map(Value::as_i64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_board_counts_moves_of_the_last_hour_and_the_search_finds_an_order() {
    let app = App::spawn().await;
    let fresh = app.place_ok(&an_order("CONSOLE-FRESH")).await;
    let old = app.place_ok(&an_order("CONSOLE-OLD")).await;
    // `old` was placed two hours ago; today it hears of a payment (still `placed`: no move)
    // and is verified (a move).
    let mut db = app.db().await;
    sqlx::query("UPDATE timeline SET occurred_at = now() - interval '2 hours' WHERE order_id = $1")
        .bind(old)
        .execute(&mut db)
        .await
        .expect("backdated");
    entry(&app, old, "payment.authorized", "placed", 120).await;
    entry(&app, old, "order.verified", "verified", 60).await;
    // `fresh`: placed (a move), a payment (no move), verified (a move).
    entry(&app, fresh, "payment.authorized", "placed", 0).await;
    entry(&app, fresh, "order.verified", "verified", 0).await;

    let (status, board) = app.get("/v1/console/flow", STAFF).await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(
        reached(&board, "placed"),
        1,
        "only `fresh` was placed this hour"
    );
    assert_eq!(reached(&board, "verified"), 2, "{board}");
    let series = board["last_hour"]["reached"]["verified"]
        .as_array()
        .expect("series");
    assert_eq!(series.len(), 60);
    assert!(
        series[58].as_i64().unwrap_or(0) + series[59].as_i64().unwrap_or(0) >= 1,
        "a move of a minute ago counts in the last minutes: {series:?}"
    );

    let (status, found) = app.get("/v1/console/orders?q=CONSOLE-OLD", STAFF).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["orders"].as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found["orders"][0]["id"], old.to_string());
    let (_, by_email) = app.get("/v1/console/orders?q=ann@example.com", STAFF).await;
    assert_eq!(
        by_email["orders"].as_array().map(Vec::len),
        Some(2),
        "{by_email}"
    );
    let (_, by_id) = app
        .get(&format!("/v1/console/orders?q={fresh}"), STAFF)
        .await;
    assert_eq!(by_id["orders"][0]["id"], fresh.to_string(), "{by_id}");
    app.stop().await;
}
