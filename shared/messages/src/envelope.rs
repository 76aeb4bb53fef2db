//! The envelope and the [`Event`] trait.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// The four exchanges of the messaging contract (DESIGN §3). Their names are fixed; a deployment
/// may put a prefix in front of every name (tests do, to stay apart from each other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// `orderflow.events` (topic): domain events, routing key = event type.
    Events,
    /// `orderflow.carriers` (direct): commands to carriers, routing key = carrier code.
    Carriers,
    /// `orderflow.carrier-events` (topic): carriers' replies, key `<carrier>.<event type>`.
    CarrierEvents,
    /// `orderflow.dlx` (topic): dead letters, routing key = the queue they died in.
    DeadLetters,
}

impl Exchange {
    pub const ALL: [Exchange; 4] = [
        Exchange::Events,
        Exchange::Carriers,
        Exchange::CarrierEvents,
        Exchange::DeadLetters,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Exchange::Events => "orderflow.events",
            Exchange::Carriers => "orderflow.carriers",
            Exchange::CarrierEvents => "orderflow.carrier-events",
            Exchange::DeadLetters => "orderflow.dlx",
        }
    }

    /// AMQP exchange type.
    pub fn kind(self) -> &'static str {
        match self {
            Exchange::Carriers => "direct",
            _ => "topic",
        }
    }
}

/// How an event travels: which exchange, and how its routing key is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `orderflow.events`, routing key = the event type.
    Events,
    /// `orderflow.carriers`, routing key = the carrier's code (shipping → carrier).
    ToCarrier,
    /// `orderflow.carrier-events`, routing key = `<carrier>.<event type>` (carrier → shipping).
    FromCarrier,
}

impl Route {
    pub fn exchange(self) -> Exchange {
        match self {
            Route::Events => Exchange::Events,
            Route::ToCarrier => Exchange::Carriers,
            Route::FromCarrier => Exchange::CarrierEvents,
        }
    }
}

/// A payload type of the catalogue.
pub trait Event: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// The `type` field of the envelope, e.g. `order.placed`.
    const TYPE: &'static str;
    /// Bumped on a breaking change of the payload.
    const SCHEMA_VERSION: u32 = 1;
    /// Where it is published.
    const ROUTE: Route = Route::Events;
}

/// Every message body: the envelope of DESIGN §3 around a typed payload.
///
/// `P` is an [`Event`] when producing and usually `serde_json::Value` when a consumer has not yet
/// decided what it holds. Unknown fields are ignored when reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope<P> {
    /// Unique per message (UUID v7); consumers deduplicate on it.
    pub message_id: Uuid,
    /// The event type, e.g. `order.placed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    /// The order this message is about.
    pub order_id: Uuid,
    /// Same for every message of one order's journey.
    pub correlation_id: Uuid,
    /// The message that caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// The service (or carrier adapter) that produced it.
    pub producer: String,
    pub payload: P,
}

impl<P: Event> Envelope<P> {
    /// The first message of a journey: its correlation id is the order id.
    pub fn new(producer: &str, order_id: Uuid, payload: P) -> Self {
        Envelope {
            message_id: Uuid::now_v7(),
            kind: P::TYPE.to_owned(),
            schema_version: P::SCHEMA_VERSION,
            occurred_at: Utc::now(),
            order_id,
            correlation_id: order_id,
            causation_id: None,
            producer: producer.to_owned(),
            payload,
        }
    }

    /// A message caused by `cause`: same order and correlation, causation = the cause's id.
    pub fn caused_by<C>(producer: &str, cause: &Envelope<C>, payload: P) -> Self {
        Envelope {
            message_id: Uuid::now_v7(),
            kind: P::TYPE.to_owned(),
            schema_version: P::SCHEMA_VERSION,
            occurred_at: Utc::now(),
            order_id: cause.order_id,
            correlation_id: cause.correlation_id,
            causation_id: Some(cause.message_id),
            producer: producer.to_owned(),
            payload,
        }
    }

    /// The same envelope with an untyped payload (for storage in an outbox).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl Envelope<serde_json::Value> {
    /// Whether this message holds an `E`.
    pub fn is<E: Event>(&self) -> bool {
        self.kind == E::TYPE
    }

    /// Reads the payload as `E`; the error says which field broke which rule.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.kind != E::TYPE {
            return Err(DecodeError(format!(
                "type: expected `{}`, got `{}`",
                E::TYPE,
                self.kind
            )));
        }
        if self.schema_version > E::SCHEMA_VERSION {
            return Err(DecodeError(format!(
                "schema_version: {} is newer than this reader's {} for `{}`",
                self.schema_version,
                E::SCHEMA_VERSION,
                E::TYPE
            )));
        }
        E::deserialize(&self.payload).map_err(|e| DecodeError(format!("payload: {e}")))
    }
}

/// A payload that does not match its type's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Declares an event type: `event!(Placed, "order.placed")`.
macro_rules! event {
    ($ty:ty, $name:literal) => {
        impl $crate::Event for $ty {
            const TYPE: &'static str = $name;
        }
    };
    ($ty:ty, $name:literal, $route:expr) => {
        impl $crate::Event for $ty {
            const TYPE: &'static str = $name;
            const ROUTE: $crate::Route = $route;
        }
    };
}
pub(crate) use event;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::CancelRequested;

    #[test]
    fn a_caused_message_keeps_the_journey_and_names_its_cause() {
        let order_id = Uuid::now_v7();
        let first = Envelope::new(
            "order-intake",
            order_id,
            CancelRequested {
                reason: "changed my mind".into(),
                requested_by: None,
            },
        );
        let next = Envelope::caused_by(
            "verification",
            &first,
            CancelRequested {
                reason: "x".into(),
                requested_by: None,
            },
        );
        assert_eq!(next.order_id, order_id);
        assert_eq!(next.correlation_id, first.correlation_id);
        assert_eq!(next.causation_id, Some(first.message_id));
        assert_ne!(next.message_id, first.message_id);
    }

    #[test]
    fn decoding_a_payload_of_another_type_names_both_types() {
        let raw: Envelope<serde_json::Value> = serde_json::from_value(serde_json::json!({
            "message_id": Uuid::now_v7(), "type": "order.completed", "schema_version": 1,
            "occurred_at": "2026-01-01T00:00:00Z", "order_id": Uuid::now_v7(),
            "correlation_id": Uuid::now_v7(), "causation_id": null, "producer": "x",
            "payload": {}, "unknown_field": "is ignored"
        }))
        .expect("envelope with unknown fields parses");
        let err = raw.decode::<CancelRequested>().expect_err("wrong type");
        assert!(err.0.contains("order.cancel_requested") && err.0.contains("order.completed"));
    }
}
