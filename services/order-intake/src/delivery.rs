//! The delivery worker: sends the queued notifications of [`notification`](crate::notification)
//! through their sink, retrying failures with exponential backoff until they are delivered or
//! have used up their attempts. Every replica runs one; each claims due rows with
//! `FOR UPDATE SKIP LOCKED`, so no notification goes out twice at once and none waits for a
//! busy replica. The worker stops when the service's database pool closes.

use std::future::Future;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use sqlx::PgPool;

/// The header that carries the signature of a webhook's body.
pub const SIGNATURE_HEADER: &str = "X-Orderflow-Signature";

/// How deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    pub max_attempts: i32,
    /// The wait after the first failure; doubled after each further one, at most an hour.
    pub first_backoff: Duration,
    pub poll: Duration,
}

/// One notification due to go out.
#[derive(Debug, sqlx::FromRow)]
pub struct Due {
    pub id: i64,
    pub sink: String,
    pub url: Option<String>,
    pub body: Value,
    pub attempts: i32,
    pub secret: Option<String>,
}

/// Where notifications go. `Err` is a failed attempt, with the reason for the delivery log.
pub trait Notifier: Send + Sync {
    fn deliver(&self, due: &Due) -> impl Future<Output = Result<(), String>> + Send;
}

/// Writes the notification to the service's log (the sink every change goes to).
#[derive(Debug, Clone, Copy)]
pub struct LogSink;

impl Notifier for LogSink {
    async fn deliver(&self, due: &Due) -> Result<(), String> {
        tracing::info!(notification = %due.body, "order status changed");
        Ok(())
    }
}

/// POSTs the notification to a shop's URL, signed with the subscription's secret: the header
/// `X-Orderflow-Signature: sha256=<hex HMAC-SHA256 of the body>`. Any 2xx is delivered.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    pub client: reqwest::Client,
}

impl Notifier for WebhookSink {
    async fn deliver(&self, due: &Due) -> Result<(), String> {
        let (Some(url), Some(secret)) = (&due.url, &due.secret) else {
            return Err("the subscription was deleted".to_owned());
        };
        let body = serde_json::to_vec(&due.body).map_err(|e| e.to_string())?;
        let signature = signature(secret, &body).ok_or("the secret cannot sign")?;
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the endpoint answered {}", response.status()))
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`; `None` only if the key were refused, which
/// HMAC never does.
pub fn signature(secret: &str, body: &[u8]) -> Option<String> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    Some(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Starts the worker.
pub fn spawn(pool: PgPool, retries: Retries, webhook: WebhookSink) {
    tokio::spawn(async move {
        let closed = pool.close_event();
        tokio::pin!(closed);
        loop {
            let busy = match round(&pool, retries, &webhook).await {
                Ok(sent) => sent > 0,
                Err(e) => {
                    if !pool.is_closed() {
                        tracing::warn!(error = format!("{e:#}"), "notification round failed");
                    }
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = &mut closed => return,
                    _ = tokio::time::sleep(retries.poll) => {}
                }
            }
        }
    });
}

/// Sends the due notifications one batch at a time; how many were attempted.
async fn round(pool: &PgPool, retries: Retries, webhook: &WebhookSink) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let due: Vec<Due> = sqlx::query_as(
        "SELECT d.id, d.sink, d.url, d.body, d.attempts, w.secret FROM deliveries d \
         LEFT JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.state = 'pending' AND d.next_attempt_at <= now() \
         ORDER BY d.next_attempt_at, d.id LIMIT 20 FOR UPDATE OF d SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    for d in &due {
        let outcome = match d.sink.as_str() {
            "log" => LogSink.deliver(d).await,
            _ => webhook.deliver(d).await,
        };
        let attempts = d.attempts + 1;
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE deliveries SET state = 'delivered', attempts = $2, \
                     delivered_at = now(), last_error = NULL, updated_at = now() WHERE id = $1",
                )
                .bind(d.id)
                .bind(attempts)
                .execute(&mut *tx)
                .await?;
            }
            Err(reason) => {
                let state = if attempts >= retries.max_attempts {
                    "failed"
                } else {
                    "pending"
                };
                let exponent = u32::try_from(attempts - 1).unwrap_or(0).min(20);
                let backoff = retries
                    .first_backoff
                    .saturating_mul(2u32.saturating_pow(exponent))
                    .min(Duration::from_secs(3600));
                sqlx::query(
                    "UPDATE deliveries SET state = $2, attempts = $3, last_error = $4, \
                     next_attempt_at = now() + make_interval(secs => $5), updated_at = now() \
                     WHERE id = $1",
                )
                .bind(d.id)
                .bind(state)
                .bind(attempts)
                .bind(&reason)
                .bind(backoff.as_secs_f64())
                .execute(&mut *tx)
                .await?;
                tracing::info!(delivery = d.id, attempts, %reason, state, "notification not delivered");
            }
        }
    }
    tx.commit().await?;
    Ok(due.len())
}
