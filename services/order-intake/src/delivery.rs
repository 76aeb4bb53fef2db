//! The delivery worker: sends the queued notifications of [`notification`](crate::notification)
//! through their sink, retrying failures with exponential backoff until they are delivered or
//! have used up their attempts. Every replica runs one; each claims due rows with
//! `FOR UPDATE SKIP LOCKED`, so no notification goes out twice at once and none waits for a
//! busy replica. The worker stops when the service's database pool closes.
//!
//! Webhooks go out over HTTPS ([`webhook_client`]): the system's trusted roots plus, if set, a
//! file of extra CA certificates; whether plain `http://` may be used is the [`PlainHttp`] rule,
//! which the subscription API enforces too.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use orderflow_runtime::config::RunMode;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use sqlx::PgPool;

/// The header that carries the signature of a webhook's body.
pub const SIGNATURE_HEADER: &str = "X-Orderflow-Signature";

/// Where plain `http://` webhook URLs may point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    /// Only to this machine (a local relay, tests): development's default.
    LoopbackOnly,
    /// Nowhere: production's default; the client refuses it too.
    Refused,
    /// Anywhere, when the deployment says so (`webhook_allow_http`).
    Allowed,
}

impl PlainHttp {
    pub fn of(env: RunMode, explicitly_allowed: bool) -> PlainHttp {
        match (explicitly_allowed, env) {
            (true, _) => PlainHttp::Allowed,
            (false, RunMode::Production) => PlainHttp::Refused,
            (false, RunMode::Development) => PlainHttp::LoopbackOnly,
        }
    }

    /// Whether `url` may be subscribed; `Err` is the rule it broke and why.
    pub fn check(self, url: &reqwest::Url) -> Result<(), (&'static str, String)> {
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match (url.scheme(), self) {
            ("https", _) => Ok(()),
            ("http", PlainHttp::Allowed) => Ok(()),
            ("http", PlainHttp::LoopbackOnly) if loopback => Ok(()),
            ("http", PlainHttp::LoopbackOnly) => Err((
                "https",
                "must be an https:// URL (plain http:// only to localhost)".to_owned(),
            )),
            ("http", PlainHttp::Refused) => Err((
                "https",
                "must be an https:// URL: this deployment refuses plain http:// webhooks"
                    .to_owned(),
            )),
            (other, _) => Err(("https", format!("must be an https:// URL, not `{other}:`"))),
        }
    }
}

/// The HTTP client of the webhook sink: rustls with the system's roots, plus the PEM
/// certificates in `extra_ca_file` (a shop's private CA). It follows no redirects (a 3xx is a
/// failed attempt, so a delivery cannot be bounced to another host or to plain HTTP) and, when
/// plain HTTP is refused, speaks HTTPS only.
pub fn webhook_client(
    timeout: Duration,
    extra_ca_file: Option<&Path>,
    plain_http: PlainHttp,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(plain_http == PlainHttp::Refused);
    if let Some(path) = extra_ca_file {
        for certificate in extra_roots(path)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().context("building the webhook client")
}

/// The certificates of a PEM file; an unreadable file or one without a certificate is an error
/// that names the setting.
fn extra_roots(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    const SETTING: &str = "order_intake.webhook_ca_file (ORDERFLOW_ORDER_INTAKE__WEBHOOK_CA_FILE)";
    let pem = std::fs::read(path)
        .with_context(|| format!("{SETTING}: cannot read {}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{SETTING}: {} is not PEM", path.display()))?;
    if certificates.is_empty() {
        bail!(
            "{SETTING}: {} holds no certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
            path.display()
        );
    }
    Ok(certificates)
}

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
            .map_err(|e| failure(&e.without_url()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the endpoint answered {}", response.status()))
        }
    }
}

/// An error with its causes, e.g. `error sending request: client error (Connect): invalid peer
/// certificate: UnknownIssuer`: the delivery log should say why, not just that, it failed.
fn failure(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        cause = e.source();
    }
    text
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
    let mut delivered = Vec::with_capacity(due.len());
    for d in &due {
        let outcome = match d.sink.as_str() {
            "log" => LogSink.deliver(d).await,
            _ => webhook.deliver(d).await,
        };
        let attempts = d.attempts + 1;
        match outcome {
            Ok(()) => delivered.push(d.id),
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
    // What went out is marked in one statement (failures are rarer and each has its reason).
    if !delivered.is_empty() {
        sqlx::query(
            "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, \
             delivered_at = now(), last_error = NULL, updated_at = now() WHERE id = ANY($1)",
        )
        .bind(&delivered)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> reqwest::Url {
        reqwest::Url::parse(raw).expect("url")
    }

    #[test]
    fn plain_http_goes_only_where_the_mode_allows_it() {
        let development = PlainHttp::of(RunMode::Development, false);
        let production = PlainHttp::of(RunMode::Production, false);
        let allowed = PlainHttp::of(RunMode::Production, true);
        for policy in [development, production, allowed] {
            assert_eq!(policy.check(&url("https://shop.example/hooks")), Ok(()));
            assert_eq!(
                policy
                    .check(&url("ftp://shop.example/hooks"))
                    .map_err(|e| e.0),
                Err("https")
            );
        }
        assert_eq!(development.check(&url("http://127.0.0.1:9/h")), Ok(()));
        assert_eq!(development.check(&url("http://[::1]:9/h")), Ok(()));
        assert!(development.check(&url("http://shop.example/h")).is_err());
        assert!(production.check(&url("http://127.0.0.1:9/h")).is_err());
        assert_eq!(allowed.check(&url("http://shop.example/h")), Ok(()));
    }

    #[test]
    fn an_unusable_ca_file_is_refused_naming_the_setting() {
        let missing = Path::new("/nonexistent/orderflow-ca.pem");
        let error = webhook_client(Duration::from_secs(1), Some(missing), PlainHttp::Refused)
            .expect_err("missing file");
        assert!(
            format!("{error:#}").contains("WEBHOOK_CA_FILE"),
            "{error:#}"
        );

        let empty =
            std::env::temp_dir().join(format!("orderflow-no-ca-{}.pem", uuid::Uuid::now_v7()));
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let error = webhook_client(Duration::from_secs(1), Some(&empty), PlainHttp::Refused)
            .expect_err("no certificate");
        let _ = std::fs::remove_file(&empty);
        assert!(
            format!("{error:#}").contains("holds no certificate"),
            "{error:#}"
        );
    }
}
