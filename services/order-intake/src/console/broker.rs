//! Queues and dead letters. Depth, consumers and rates come from RabbitMQ's management API
//! (`[console] management_url`, user and password, which never leave this process); the dead
//! letters are read over AMQP with [`dead_letter`], the same code as `orderflow dlq`, so a
//! listing holds them unacknowledged and gives them back, and a replay acks only after the
//! broker confirmed the republished message.
//!
//! Only the queues of this deployment count: those in the vhost of `AMQP_URL` whose names start
//! with `[amqp] prefix`.

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orderflow_runtime::auth::{Caller, Role};
use orderflow_runtime::dead_letter::{self, Browse, DeadLetter};
use orderflow_runtime::problem::{FieldError, JsonBody, Problem};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Console;

/// How the console's broker connection is named.
const CONNECTION_NAME: &str = "order-intake/console";
/// Queues listed at most (the management API pages its answer).
const PAGE_SIZE: u32 = 500;

/// One queue as the console shows it.
#[derive(Debug, Serialize)]
pub struct QueueView {
    /// Without the deployment's prefix.
    name: String,
    dead_letters: bool,
    messages: u64,
    ready: u64,
    unacked: u64,
    consumers: u64,
    /// Messages per second, as the management API last sampled them.
    publish_rate: f64,
    deliver_rate: f64,
    ack_rate: f64,
}

/// A 502 naming what did not answer; the details go to the log.
fn upstream_failed(what: &str, error: &anyhow::Error) -> Problem {
    tracing::warn!(error = format!("{error:#}"), "{what} failed");
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "upstream",
        "an upstream service failed",
    )
    .detail(format!(
        "{what} did not answer as expected; see intake's log"
    ))
}

/// The vhost of the AMQP URL, percent-encoded as the management API's paths want it.
fn vhost(amqp_url: &str) -> String {
    let path = reqwest::Url::parse(amqp_url)
        .map(|u| u.path().trim_start_matches('/').to_owned())
        .unwrap_or_default();
    if path.is_empty() {
        "%2F".to_owned()
    } else {
        path
    }
}

/// `prefix` as a regular expression matching names that start with it.
fn starts_with(prefix: &str) -> String {
    let mut pattern = String::from("^");
    for c in prefix.chars() {
        if !c.is_ascii_alphanumeric() && c != '-' && c != '_' {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

fn rate(stats: &Value, key: &str) -> f64 {
    stats[key]["rate"].as_f64().unwrap_or(0.0)
}

/// Every queue of this deployment, by name.
async fn list_queues(console: &Console) -> anyhow::Result<Vec<QueueView>> {
    let prefix = &console.settings.amqp.prefix;
    let url = format!(
        "{}/api/queues/{}",
        console.own.management_url.trim_end_matches('/'),
        vhost(console.settings.amqp.url.expose())
    );
    let answer: Value = console
        .upstream
        .get(&url)
        .query(&[
            ("page", "1".to_owned()),
            ("page_size", PAGE_SIZE.to_string()),
            ("name", starts_with(prefix)),
            ("use_regex", "true".to_owned()),
        ])
        .basic_auth(
            &console.own.management_user,
            Some(console.own.management_password.expose()),
        )
        .send()
        .await
        .with_context(|| format!("calling {url}"))?
        .error_for_status()
        .with_context(|| format!("calling {url}"))?
        .json()
        .await
        .context("reading the management API's answer")?;
    let mut queues: Vec<QueueView> = answer["items"]
        .as_array()
        .context("the management API's answer has no `items`")?
        .iter()
        .filter_map(|q| {
            let name = q["name"]
                .as_str()?
                .strip_prefix(prefix.as_str())?
                .to_owned();
            let count = |key: &str| q[key].as_u64().unwrap_or(0);
            let stats = &q["message_stats"];
            Some(QueueView {
                dead_letters: name.ends_with(".dead"),
                messages: count("messages"),
                ready: count("messages_ready"),
                unacked: count("messages_unacknowledged"),
                consumers: count("consumers"),
                publish_rate: rate(stats, "publish_details"),
                deliver_rate: rate(stats, "deliver_get_details"),
                ack_rate: rate(stats, "ack_details"),
                name,
            })
        })
        .collect();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(queues)
}

async fn dead_queues(console: &Console) -> Result<Vec<String>, Problem> {
    let queues = list_queues(console)
        .await
        .map_err(|e| upstream_failed("RabbitMQ's management API", &e))?;
    Ok(queues
        .into_iter()
        .filter(|q| q.dead_letters)
        .map(|q| q.name)
        .collect())
}

/// `GET /v1/console/queues` → `{"queues": [QueueView]}`.
pub async fn queues(State(console): State<Console>, caller: Caller) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let queues = list_queues(&console)
        .await
        .map_err(|e| upstream_failed("RabbitMQ's management API", &e))?;
    Ok(axum::Json(json!({ "queues": queues })).into_response())
}

/// Card tokens travel in `order.placed`; a dead letter shown to staff shows `***` instead.
fn redacted(body: &str) -> String {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map.iter_mut() {
                    if key == "token" && inner.is_string() {
                        *inner = Value::String("***".to_owned());
                    } else {
                        walk(inner);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(body) {
        Ok(mut value) => {
            walk(&mut value);
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        // Not JSON (truncated, say): it may still hold a token, so only a body that names
        // none is shown.
        Err(_) if body.contains("token") => {
            "(not JSON and it mentions a token: not shown; `orderflow dlq show` reads it)"
                .to_owned()
        }
        Err(_) => body.to_owned(),
    }
}

fn shown(letter: &DeadLetter) -> DeadLetter {
    let mut letter = letter.clone();
    letter.body = redacted(&letter.body);
    letter
}

async fn browse(console: &Console, queues: &[String]) -> Result<Browse, Problem> {
    Browse::open(&console.settings, queues, CONNECTION_NAME)
        .await
        .map_err(|e| upstream_failed("RabbitMQ", &e))
}

/// `GET /v1/console/dead-letters` → `{"letters": [DeadLetter]}`, every dead letter with its
/// reason, where it came from and how often it was delivered; none is taken off its queue.
pub async fn dead_letters(
    State(console): State<Console>,
    caller: Caller,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let queues = dead_queues(&console).await?;
    let browse = browse(&console, &queues).await?;
    let letters: Vec<DeadLetter> = browse.letters().map(shown).collect();
    browse
        .finish()
        .await
        .map_err(|e| upstream_failed("RabbitMQ", &e))?;
    Ok(axum::Json(json!({ "letters": letters })).into_response())
}

/// `POST /v1/console/dead-letters/{id}/replay` → `{"replayed": 1}`: republishes the letter to
/// where it was first sent; 404 if no dead letter has that id.
pub async fn replay(
    State(console): State<Console>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    let queues = dead_queues(&console).await?;
    let mut browse = browse(&console, &queues).await?;
    let replayed = browse.replay(|l| l.id == id).await;
    let finished = browse.finish().await;
    let replayed = replayed.map_err(|e| upstream_failed("RabbitMQ", &e))?;
    finished.map_err(|e| upstream_failed("RabbitMQ", &e))?;
    if replayed == 0 {
        return Err(Problem::not_found(format!("there is no dead letter {id}")));
    }
    tracing::info!(id, by = caller.role.as_str(), name = ?caller.key_name, "dead letter replayed");
    Ok(axum::Json(json!({ "replayed": replayed })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PurgeRequest {
    queue: Option<String>,
}

/// `POST /v1/console/dead-letters/purge` `{"queue": "<name>.dead"}` (admin) → `{"queue",
/// "purged"}`: deletes every letter of one dead-letter queue.
pub async fn purge(
    State(console): State<Console>,
    caller: Caller,
    body: Result<JsonBody<PurgeRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let JsonBody(request) = body?;
    let queues = dead_queues(&console).await?;
    let queue = request.queue.unwrap_or_default();
    if !queues.contains(&queue) {
        return Err(Problem::validation(vec![FieldError::new(
            "queue",
            "one_of",
            format!(
                "`{queue}` is not a dead-letter queue here; one of: {}",
                queues.join(", ")
            ),
        )]));
    }
    let counts = dead_letter::purge(
        &console.settings,
        std::slice::from_ref(&queue),
        true,
        CONNECTION_NAME,
    )
    .await
    .map_err(|e| upstream_failed("RabbitMQ", &e))?;
    let purged: u32 = counts.iter().map(|(_, n)| n).sum();
    tracing::info!(queue, purged, by = caller.role.as_str(), name = ?caller.key_name, "dead letters purged");
    Ok(axum::Json(json!({ "queue": queue, "purged": purged })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vhost_comes_from_the_amqp_url_as_the_management_api_spells_it() {
        assert_eq!(vhost("amqp://guest:guest@127.0.0.1:5672/%2f"), "%2f");
        assert_eq!(vhost("amqps://u:p@broker:5671/orderflow"), "orderflow");
        assert_eq!(vhost("amqp://u:p@broker"), "%2F");
    }

    #[test]
    fn a_prefix_matches_only_names_that_start_with_it() {
        assert_eq!(starts_with("test-1a2b."), "^test-1a2b\\.");
        assert_eq!(starts_with(""), "^");
    }

    #[test]
    fn card_tokens_in_a_dead_letter_are_masked_and_other_bodies_kept() {
        let body = r#"{"payload": {"payment": {"method": "card", "token": "tok_visa"}}}"#;
        let shown = redacted(body);
        assert!(shown.contains(r#""token": "***""#) && !shown.contains("tok_visa"));
        assert!(shown.contains(r#""method": "card""#));
        assert_eq!(redacted("not json at all"), "not json at all");
        let truncated = r#"{"payload": {"payment": {"token": "tok_visa""#;
        assert!(
            !redacted(truncated).contains("tok_visa"),
            "a broken body hides its token"
        );
    }
}
