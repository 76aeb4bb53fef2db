//! One dead letter read from its queue: why, from where and how often — from our own
//! `x-orderflow-*` headers (a consumer gave up with a reason) or the broker's `x-death` (a
//! delivery limit reached, or a reject without requeue).

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use orderflow_runtime::topology::Names;
use serde::Serialize;

/// One dead letter as found in its queue.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The message id, or `body-<hash>` for a message without one.
    pub id: String,
    /// The dead-letter queue, without the prefix.
    pub dead_queue: String,
    pub kind: Option<String>,
    /// `delivery_limit`, `rejected`, or the consumer's reason (e.g. `malformed envelope: …`).
    pub reason: String,
    /// The queue that gave up on it, without the prefix.
    pub original_queue: String,
    pub exchange: String,
    pub routing_key: String,
    /// How many times its work queue delivered it before it was dead-lettered (for the broker's
    /// `delivery_limit`, the limit; 1 when unknown).
    pub deliveries: u64,
    pub dead_lettered_at: Option<String>,
    pub body: String,
    #[serde(skip)]
    pub(super) raw: Vec<u8>,
    #[serde(skip)]
    pub(super) properties: BasicProperties,
}

fn header<'a>(headers: &'a FieldTable, key: &str) -> Option<&'a AMQPValue> {
    headers.inner().get(key)
}

fn text(value: Option<&AMQPValue>) -> Option<String> {
    match value? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Why, from where and how often: our own `x-orderflow-*` headers first, else the broker's
/// `x-death` (a delivery limit reached, or a nack without requeue).
pub(super) fn describe(
    names: &Names,
    delivery_limit: u32,
    dead_queue: &str,
    raw: Vec<u8>,
    properties: BasicProperties,
) -> DeadLetter {
    let headers = properties.headers().clone().unwrap_or_default();
    let unprefixed = |q: String| {
        q.strip_prefix(&names.prefix)
            .map(str::to_owned)
            .unwrap_or(q)
    };
    let first_death = match header(&headers, "x-death") {
        Some(AMQPValue::FieldArray(deaths)) => match deaths.as_slice().first() {
            Some(AMQPValue::FieldTable(t)) => Some(t.clone()),
            _ => None,
        },
        _ => None,
    };
    let death = |key: &str| first_death.as_ref().and_then(|t| text(header(t, key)));
    let reason = text(header(&headers, "x-orderflow-reason"))
        .or_else(|| text(header(&headers, "x-first-death-reason")))
        .or_else(|| death("reason"))
        .unwrap_or_else(|| "unknown".to_owned());
    let original_queue = text(header(&headers, "x-orderflow-queue"))
        .or_else(|| text(header(&headers, "x-first-death-queue")).map(unprefixed))
        .unwrap_or_else(|| dead_queue.trim_end_matches(".dead").to_owned());
    let exchange = text(header(&headers, "x-orderflow-exchange"))
        .or_else(|| text(header(&headers, "x-first-death-exchange")))
        .unwrap_or_default();
    let routing_key = text(header(&headers, "x-orderflow-routing-key"))
        .or_else(
            || match first_death.as_ref().and_then(|t| header(t, "routing-keys")) {
                Some(AMQPValue::FieldArray(keys)) => text(keys.as_slice().first()),
                _ => None,
            },
        )
        // Published straight into the queue (default exchange): back the same way.
        .unwrap_or_else(|| names.queue(&original_queue));
    // Not `x-delivery-count`: in a dead-letter queue that counts this queue's own deliveries
    // (every listing), not the work queue's.
    let deliveries = text(header(&headers, "x-orderflow-deliveries"))
        .and_then(|n| n.parse().ok())
        .or_else(|| (reason == "delivery_limit").then_some(u64::from(delivery_limit) + 1))
        .unwrap_or(1);
    let id = properties
        .message_id()
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_else(|| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            raw.hash(&mut hasher);
            format!("body-{:016x}", hasher.finish())
        });
    DeadLetter {
        id,
        dead_queue: dead_queue.to_owned(),
        kind: properties.kind().as_ref().map(|k| k.to_string()),
        reason,
        original_queue,
        exchange,
        routing_key,
        deliveries,
        dead_lettered_at: text(header(&headers, "x-orderflow-dead-lettered-at")),
        body: String::from_utf8_lossy(&raw).chars().take(4000).collect(),
        raw,
        properties,
    }
}

pub(super) fn without_dead_letter_headers(properties: &BasicProperties) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (key, value) in properties.headers().clone().unwrap_or_default().inner() {
        let k = key.as_str();
        if k.starts_with("x-orderflow-")
            || k.starts_with("x-death")
            || k.starts_with("x-first-death")
            || k.starts_with("x-last-death")
            || k == "x-delivery-count"
        {
            continue;
        }
        headers.insert(key.clone(), value.clone());
    }
    properties.clone().with_headers(headers)
}
