//! Dead letters on the real broker: a queue's depth, and a probe message published with the
//! headers a test chooses (a consumer's `x-orderflow-*` headers, say).

use lapin::BasicProperties;
use lapin::Channel;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use uuid::Uuid;

/// How many messages `queue` holds (it must exist).
pub async fn depth(channel: &Channel, queue: &str) -> u32 {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue exists")
        .message_count()
}

/// Headers of long strings, e.g. `x-orderflow-reason`.
pub fn headers(pairs: &[(&str, &str)]) -> FieldTable {
    let mut headers = FieldTable::default();
    for (k, v) in pairs {
        headers.insert(
            ShortString::from(*k),
            AMQPValue::LongString(LongString::from((*v).to_owned())),
        );
    }
    headers
}

/// Publishes `{"probe": "<id>"}` (message id `id`, type `order.placed`) with `headers`, mandatory,
/// and waits for the broker's confirm (the channel must be in confirm mode).
pub async fn publish(channel: &Channel, exchange: &str, key: &str, id: Uuid, headers: FieldTable) {
    channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            format!(r#"{{"probe":"{id}"}}"#).as_bytes(),
            BasicProperties::default()
                .with_message_id(id.to_string().into())
                .with_type("order.placed".into())
                .with_headers(headers),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
}
