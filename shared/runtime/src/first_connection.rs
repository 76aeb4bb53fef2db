//! The first connection to PostgreSQL or RabbitMQ at start-up, retried with backoff.
//!
//! In a deployment the database or broker is often still starting when a service (or the
//! `migrate` job) starts: compose restarts, a node being replaced, a database failing over.
//! Exiting at the first refusal turns that into a restart loop with nothing in the log but the
//! last error; instead each try is logged with its error, and the service gives up only after
//! `connect_timeout_secs` of its `[amqp]` or `[database]` section (0: one try). An error
//! that waiting cannot cure (a schema newer than the binary) is marked [`Final`] and ends the
//! retries at once.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

/// An error that no retry can cure: [`retry`] returns it at once.
#[derive(Debug)]
pub struct Final(pub String);

impl std::fmt::Display for Final {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Final {}

/// Runs `connect` until it succeeds or `within` has passed; `what` names the peer in the log.
/// The last error is returned with the number of tries and the setting that bounds them.
pub async fn retry<T, F, Fut>(
    what: &str,
    setting: &str,
    within: Duration,
    mut connect: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + within;
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build();
    let mut tries = 0u32;
    loop {
        tries += 1;
        let error = match connect().await {
            Ok(connected) => {
                if tries > 1 {
                    tracing::info!(peer = what, tries, "connected");
                }
                return Ok(connected);
            }
            Err(e) if e.downcast_ref::<Final>().is_some() => return Err(e),
            Err(e) => e,
        };
        let delay = delays.next().unwrap_or(Duration::from_secs(5));
        let now = Instant::now();
        if now + delay > deadline {
            return Err(error.context(format!(
                "{what}: gave up after {tries} tries in {:.0?} ({setting} = {})",
                within,
                within.as_secs()
            )));
        }
        tracing::warn!(
            peer = what,
            try_number = tries,
            retry_in_ms = delay.as_millis() as u64,
            error = format!("{error:#}"),
            "cannot connect yet; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_peer_that_comes_up_late_is_connected_to() {
        let calls = AtomicU32::new(0);
        let got = retry(
            "peer",
            "x.connect_timeout_secs",
            Duration::from_secs(10),
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        anyhow::bail!("refused")
                    }
                    Ok(n)
                }
            },
        )
        .await
        .expect("connected on the third try");
        assert_eq!(got, 2);
    }

    #[tokio::test]
    async fn a_peer_that_never_comes_up_is_given_up_on_naming_the_setting() {
        let started = Instant::now();
        let error = retry::<(), _, _>(
            "PostgreSQL",
            "database.connect_timeout_secs",
            Duration::from_secs(1),
            || async { anyhow::bail!("connection refused") },
        )
        .await
        .expect_err("never connects");
        let text = format!("{error:#}");
        assert!(text.contains("database.connect_timeout_secs"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "bounded by the setting"
        );
    }

    #[tokio::test]
    async fn zero_means_one_try() {
        let calls = AtomicU32::new(0);
        let _ = retry::<(), _, _>("peer", "s", Duration::ZERO, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { anyhow::bail!("refused") }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_final_error_is_not_retried() {
        let calls = AtomicU32::new(0);
        let error = retry::<(), _, _>("peer", "s", Duration::from_secs(10), || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(anyhow::Error::new(Final("too new".into())).context("checking")) }
        })
        .await
        .expect_err("final");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(format!("{error:#}").contains("too new"), "{error:#}");
    }
}
