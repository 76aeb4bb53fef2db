//! Two replicas deciding orders for the same stock at once.

use std::collections::HashSet;

use orderflow_messages::order::{Rejected, Verified};
use sqlx::Row;

use crate::helpers::{App, WAIT, order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_orders_for_twenty_five_units_on_two_replicas_never_oversell() {
    // Small batches, so both replicas get a share of the orders and work at the same time.
    let app = App::spawn_replicas(2, |s| {
        s.with("amqp.prefetch", 4)
            .and_then(|s| s.with("amqp.batch_size", 4))
            .expect("settings")
    })
    .await;
    app.product("MUG-1", 1200, "EUR").await;
    app.warehouse("BER").await;
    app.receive("BER", "MUG-1", 25).await;
    let mut probe = app.probe(&["order.verified", "order.rejected"]).await;

    let mut placed = HashSet::new();
    for _ in 0..40 {
        placed.insert(app.place(order("EUR", &[("MUG-1", 1, 1200)])).await);
    }

    let mut verified = HashSet::new();
    let mut rejected = HashSet::new();
    while verified.len() + rejected.len() < 40 {
        let (_, envelope) = probe.next(WAIT).await;
        if envelope.is::<Verified>() {
            verified.insert(envelope.order_id);
        } else {
            let reasons = envelope
                .decode::<Rejected>()
                .expect("order.rejected")
                .reasons;
            assert!(
                reasons.iter().all(|r| r.code == "out_of_stock"),
                "{reasons:?}"
            );
            rejected.insert(envelope.order_id);
        }
    }
    assert_eq!((verified.len(), rejected.len()), (25, 15));
    assert!(verified.is_disjoint(&rejected));
    assert_eq!(&verified | &rejected, placed);
    assert_eq!(app.stock("MUG-1").await, vec![("BER".into(), 25, 25, 0)]);

    // The ledger accounts for every reserved unit, once.
    let mut db = app.env.connect_db("verification").await;
    let ledger = sqlx::query(
        "SELECT coalesce(sum(delta_reserved), 0)::bigint AS reserved, count(*) AS rows \
         FROM stock_movements WHERE reason = 'reserved'",
    )
    .fetch_one(&mut db)
    .await
    .expect("ledger");
    assert_eq!(ledger.get::<i64, _>("reserved"), 25);
    assert_eq!(ledger.get::<i64, _>("rows"), 25);
    app.stop().await;
}
