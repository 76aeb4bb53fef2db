//! The transactional outbox.
//!
//! A handler or an HTTP request writes the messages it causes with [`enqueue`] in the same
//! transaction as its state change, so either both happen or neither. The [`Relay`] publishes
//! them: it wakes on `NOTIFY` (sent by [`enqueue`] and delivered at commit), claims a batch with
//! `FOR UPDATE SKIP LOCKED` (several replicas relay side by side without sending a row twice),
//! publishes it pipelined with confirms, and deletes what the broker confirmed in the same
//! transaction that claimed it. If the process dies between confirm and delete, the rows are
//! published again; consumers deduplicate on `message_id`, so that is harmless.

use std::time::Duration;

use anyhow::Context;
use orderflow_messages::{Envelope, Event, Exchange};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::amqp::{Outgoing, PublishError, Publisher};

/// Most rows published per round.
const BATCH: i64 = 500;
/// Safety net: a relay looks for due rows this often even without a notification (after a
/// reconnect of its listener, or for rows waiting on a retry delay).
const FALLBACK_POLL: Duration = Duration::from_secs(2);

/// The notification channel of the outbox in `schema`.
pub fn channel_name(schema: &str) -> String {
    format!("orderflow_outbox_{schema}")
}

/// Writes `envelope` to the outbox of the current schema, in the caller's transaction.
/// `carrier` is the carrier's code for carrier commands (see [`Outgoing::from_envelope`]).
pub async fn enqueue<E: Event>(
    conn: &mut PgConnection,
    envelope: &Envelope<E>,
    carrier: Option<&str>,
) -> anyhow::Result<()> {
    let msg = Outgoing::from_envelope(envelope, carrier)?;
    // One round trip: the row, and a notification delivered at commit (once per transaction,
    // however many rows it wrote).
    sqlx::query(
        "WITH written AS ( \
             INSERT INTO outbox (message_id, exchange, routing_key, kind, body) \
             VALUES ($1, $2, $3, $4, $5) RETURNING 1) \
         SELECT pg_notify('orderflow_outbox_' || current_schema(), '') FROM written",
    )
    .bind(msg.message_id)
    .bind(msg.exchange.name())
    .bind(&msg.routing_key)
    .bind(&msg.kind)
    .bind(&msg.body)
    .execute(&mut *conn)
    .await
    .context("writing to the outbox")?;
    Ok(())
}

/// Rows not yet published (a health figure; `orderflow_outbox_pending`).
pub async fn pending(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await?)
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    message_id: Uuid,
    exchange: String,
    routing_key: String,
    kind: String,
    body: Vec<u8>,
    attempts: i32,
}

fn exchange_of(name: &str) -> Exchange {
    Exchange::ALL
        .into_iter()
        .find(|e| e.name() == name)
        .unwrap_or(Exchange::Events)
}

/// Publishes a service's outbox.
pub struct Relay {
    pub service: &'static str,
    pub schema: String,
    pub pool: PgPool,
    pub publisher: Publisher,
}

impl Relay {
    /// Runs until `shutdown`, then drains what is due and returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&channel_name(&self.schema)).await?;
        loop {
            self.drain().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                notified = listener.recv() => {
                    if let Err(e) = notified {
                        tracing::warn!(service = self.service, error = %e, "outbox listener lost; reconnecting");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                _ = tokio::time::sleep(FALLBACK_POLL) => {}
            }
        }
        // Last round: until nothing is due, so what committed meanwhile goes out too.
        while let Ok(claimed) = self.publish_batch().await {
            if claimed == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Publishes batches until nothing is due (or the broker is unreachable for now).
    pub async fn drain(&self) {
        loop {
            match self.publish_batch().await {
                // A short batch took everything due: rows committed since then have notified
                // the listener, which wakes the relay again, so a second look would be empty.
                Ok(n) if n < BATCH as usize => return,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(
                        service = self.service,
                        error = format!("{e:#}"),
                        "outbox relay round failed; retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return;
                }
            }
        }
    }

    /// One round: claim, publish, confirm, delete. Returns how many rows it claimed (a full
    /// batch after a connection error, so that the caller looks again at once).
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, message_id, exchange, routing_key, kind, body, attempts FROM outbox \
             WHERE next_attempt_at <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let messages: Vec<Outgoing> = rows
            .iter()
            .map(|r| Outgoing {
                exchange: exchange_of(&r.exchange),
                routing_key: r.routing_key.clone(),
                message_id: r.message_id,
                kind: r.kind.clone(),
                correlation_id: correlation_of(&r.body).unwrap_or(r.message_id),
                producer: self.service.to_owned(),
                body: r.body.clone(),
            })
            .collect();
        let results = self.publisher.publish_all(&messages).await;

        let mut sent = Vec::new();
        let mut connection_error = None;
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => sent.push(row.id),
                Err(PublishError::Broker(e)) => connection_error = Some(e),
                Err(e) => {
                    // Unroutable or refused: keep the row, retry later with a growing delay, and
                    // say so loudly; `orderflow check` reports rows stuck here.
                    let delay = 2_i64.saturating_pow(row.attempts.clamp(0, 10) as u32);
                    tracing::error!(service = self.service, message_id = %row.message_id,
                        kind = %row.kind, error = %e, "outbox message not accepted by the broker");
                    sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, \
                         next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
                    )
                    .bind(row.id)
                    .bind(e.to_string())
                    .bind(delay as f64)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(&sent)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("orderflow_outbox_published_total", "service" => self.service)
            .increment(sent.len() as u64);
        if let Some(e) = connection_error {
            // Wait for lapin to recover the channel before the next round.
            self.publisher
                .wait_for_recovery(e)
                .await
                .context("the publish channel did not recover")?;
            // What was not sent is due again now: tell `drain` to look again at once.
            return Ok(BATCH as usize);
        }
        Ok(rows.len())
    }
}

fn correlation_of(body: &[u8]) -> Option<Uuid> {
    #[derive(serde::Deserialize)]
    struct Head {
        correlation_id: Uuid,
    }
    serde_json::from_slice::<Head>(body)
        .ok()
        .map(|h| h.correlation_id)
}
