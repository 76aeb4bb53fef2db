//! Where the latency goes: for the orders of the latency phase, the time from each message to
//! the message it caused, by the pair of types, read from intake's timeline (each entry's
//! `causation_id` and `occurred_at`, the time its producer wrote it). A hop so measured holds
//! the producer's relay, the broker, the consumer's wait in its queue and its handling. An
//! entry whose cause intake never hears (a carrier's reply, say) is measured from the entry
//! before it in the order's timeline, and named so; such a hop spans several messages.

use serde::Serialize;
use uuid::Uuid;

/// One kind of hop: `from` caused `to`.
#[derive(Serialize, sqlx::FromRow)]
pub struct Hop {
    pub from: String,
    pub to: String,
    /// How many such hops the orders had.
    pub count: i64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The hops of `orders`, slowest median first.
pub async fn measure(intake: &sqlx::PgPool, orders: &[Uuid]) -> anyhow::Result<Vec<Hop>> {
    Ok(sqlx::query_as(
        "WITH entry AS ( \
             SELECT kind, causation_id, occurred_at, \
             lag(kind) OVER w AS before_kind, lag(occurred_at) OVER w AS before_at \
             FROM timeline WHERE order_id = ANY($1) \
             WINDOW w AS (PARTITION BY order_id ORDER BY occurred_at, id)), \
         hop AS ( \
             SELECT coalesce(cause.kind, entry.before_kind || ' (the entry before)') AS from_kind, \
             entry.kind AS to_kind, extract(epoch FROM entry.occurred_at \
             - coalesce(cause.occurred_at, entry.before_at))::float8 * 1000 AS ms \
             FROM entry LEFT JOIN timeline cause ON cause.message_id = entry.causation_id \
             WHERE coalesce(cause.kind, entry.before_kind) IS NOT NULL) \
         SELECT from_kind AS from, to_kind AS to, count(*) AS count, \
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50_ms, \
         percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99_ms \
         FROM hop GROUP BY from_kind, to_kind ORDER BY p50_ms DESC",
    )
    .bind(orders)
    .fetch_all(intake)
    .await?)
}

#[cfg(test)]
mod tests {
    use orderflow_runtime::testing::TestEnv;
    use uuid::Uuid;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hop_is_timed_from_its_cause_or_else_from_the_entry_before() {
        let env = TestEnv::new();
        let spec = order_intake::spec();
        let intake = orderflow_runtime::database::connect_and_migrate(
            &env.settings.database,
            spec.schema,
            spec.migrator,
        )
        .await
        .expect("intake's schema");
        let (order, other) = (Uuid::now_v7(), Uuid::now_v7());
        for id in [order, other] {
            sqlx::query(
                "INSERT INTO orders (id, channel, status, progress, customer_email, \
                 customer_name, currency, shipping_address, delivery, payment_method, \
                 created_at, updated_at) VALUES ($1, 'web', 'placed', 'placed', \
                 'a@example.com', 'A', 'EUR', '{}', '{}', 'card', now(), now())",
            )
            .bind(id)
            .execute(&intake)
            .await
            .expect("an order");
        }
        // placed at 0 ms; verified (caused by placed) at 30; shipped, whose cause intake never
        // heard, at 100; the other order's placed, not asked about.
        let (placed, verified) = (Uuid::now_v7(), Uuid::now_v7());
        let entries = [
            (order, placed, None, "order.placed", 0),
            (order, verified, Some(placed), "order.verified", 30),
            (
                order,
                Uuid::now_v7(),
                Some(Uuid::now_v7()),
                "order.shipped",
                100,
            ),
            (other, Uuid::now_v7(), Some(verified), "order.packed", 500),
        ];
        for (order_id, message_id, cause, kind, ms) in entries {
            sqlx::query(
                "INSERT INTO timeline (order_id, message_id, causation_id, kind, status, \
                 producer, detail, occurred_at) VALUES ($1, $2, $3, $4, 'placed', 'test', '', \
                 timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => $5 / 1000.0))",
            )
            .bind(order_id)
            .bind(message_id)
            .bind(cause)
            .bind(kind)
            .bind(f64::from(ms))
            .execute(&intake)
            .await
            .expect("a timeline entry");
        }

        let hops = super::measure(&intake, &[order]).await.expect("the hops");
        let seen: Vec<(&str, &str, i64, f64)> = hops
            .iter()
            .map(|h| (h.from.as_str(), h.to.as_str(), h.count, h.p50_ms.round()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "order.verified (the entry before)",
                    "order.shipped",
                    1,
                    70.0
                ),
                ("order.placed", "order.verified", 1, 30.0),
            ]
        );
    }
}
