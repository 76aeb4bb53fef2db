//! Hostile messages for every consumer queue, from a seeded generator (the same seed gives the
//! same messages): not JSON, bad UTF-8, empty, 5 MB, nested too deep, JSON of the wrong shape,
//! envelopes with a field missing or of the wrong type, unknown types, known types with a
//! payload of the wrong shape, and a content type that is not JSON. Each carries its own AMQP
//! message id, so the test can find it again in the dead-letter queue.

use std::collections::BTreeMap;

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use orderflow_runtime::testing::TestEnv;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore};
use serde_json::{Value, json};
use uuid::Uuid;

/// A consumer queue, a message type it is bound to, and whether its consumer is one of ours
/// (the simulated carrier is an outside party: it ignores types it does not know and reads
/// any content type, so only what it cannot read at all is dead-lettered there).
pub const QUEUES: [(&str, &str, bool); 7] = [
    ("order-intake.events", "order.shipped", true),
    ("verification.orders", "order.placed", true),
    ("fulfilment.orders", "order.verified", true),
    ("shipping.orders", "order.packed", true),
    ("shipping.carrier-events", "shipment.label_created", true),
    ("billing.orders", "order.verified", true),
    ("carrier.sim", "shipment.requested", false),
];

/// One hostile message: where it went, what kind of hostile it is, and its id.
#[derive(Debug, Clone)]
pub struct Hostile {
    pub queue: &'static str,
    pub kind: &'static str,
    pub id: Uuid,
    pub bytes: usize,
}

struct Message {
    kind: &'static str,
    body: Vec<u8>,
    content_type: Option<&'static str>,
}

fn envelope(kind: &str, payload: Value) -> Value {
    json!({
        "message_id": Uuid::now_v7(), "type": kind, "schema_version": 1,
        "occurred_at": "2026-11-27T20:00:00Z", "order_id": Uuid::now_v7(),
        "correlation_id": Uuid::now_v7(), "causation_id": null, "producer": "hostile",
        "payload": payload,
    })
}

fn random_text(dice: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(dice.random_range(b' '..=b'~')))
        .collect()
}

/// A value of the wrong type for any required envelope field.
fn wrong_value(dice: &mut StdRng) -> Value {
    [
        json!(42),
        json!(-1),
        json!(1.5e300),
        json!("not-what-it-should-be"),
        json!([]),
        json!({}),
        json!(true),
        Value::Null,
    ]
    .choose(dice)
    .cloned()
    .unwrap_or(Value::Null)
}

const REQUIRED: [&str; 7] = [
    "message_id",
    "type",
    "schema_version",
    "occurred_at",
    "order_id",
    "correlation_id",
    "producer",
];

const KINDS: [&str; 14] = [
    "not json",
    "random bytes",
    "bad utf-8 in a string",
    "empty body",
    "nested too deep",
    "json array",
    "json scalar",
    "json object of another shape",
    "envelope field missing",
    "envelope field of the wrong type",
    "payload of the wrong shape",
    "payload with wrong types",
    "unknown type",
    "wrong content type",
];

/// The `kind` of hostile message for a queue bound to `bound_type`.
fn make(dice: &mut StdRng, kind: &'static str, bound_type: &str) -> Message {
    let json_body = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
    let mut content_type = Some("application/json");
    let body = match kind {
        "not json" => random_text(dice, 200).into_bytes(),
        "random bytes" => {
            let mut b = vec![0u8; dice.random_range(1..512)];
            dice.fill_bytes(&mut b);
            b[0] = 0xff;
            b
        }
        "bad utf-8 in a string" => {
            let mut b =
                br#"{"message_id": "01900000-0000-7000-8000-000000000000", "type": "order."#
                    .to_vec();
            b.extend_from_slice(&[0xff, 0xfe, 0xc3]);
            b.extend_from_slice(br#"", "payload": {}}"#);
            b
        }
        "empty body" => Vec::new(),
        "nested too deep" => {
            let depth = dice.random_range(200..20_000);
            let mut b = br#"{"payload": "#.to_vec();
            b.extend(std::iter::repeat_n(b'[', depth));
            b.extend(std::iter::repeat_n(b']', depth));
            b.push(b'}');
            b
        }
        "json array" => json_body(json!([envelope(bound_type, json!({}))])),
        "json scalar" => json_body(
            [json!(42), json!("order.placed"), Value::Null, json!(true)]
                .choose(dice)
                .cloned()
                .unwrap_or(Value::Null),
        ),
        "json object of another shape" => {
            json_body(json!({"order": {"id": 1}, "hello": random_text(dice, 20)}))
        }
        "envelope field missing" => {
            let mut e = envelope(bound_type, json!({}));
            let field = REQUIRED.choose(dice).copied().unwrap_or("type");
            e.as_object_mut().map(|o| o.remove(field));
            json_body(e)
        }
        "envelope field of the wrong type" => {
            let mut e = envelope(bound_type, json!({}));
            let field = REQUIRED.choose(dice).copied().unwrap_or("type");
            // A string stays a string only where the field is not a string.
            let mut value = wrong_value(dice);
            if value.is_string() && ["type", "producer"].contains(&field) {
                value = json!(7);
            }
            e[field] = value;
            json_body(e)
        }
        "payload of the wrong shape" => json_body(envelope(
            bound_type,
            [json!({}), json!([1, 2, 3]), json!("payload"), Value::Null]
                .choose(dice)
                .cloned()
                .unwrap_or(Value::Null),
        )),
        "payload with wrong types" => json_body(envelope(
            bound_type,
            json!({"lines": "many", "currency": 978, "warehouse": [], "shipment_id": 1,
                   "parcels": {"a": 1}, "reservations": false, "tracking_number": {}}),
        )),
        "unknown type" => {
            let kind = format!("order.{}", random_text(dice, 12).replace(['"', '\\'], "x"));
            json_body(envelope(&kind, json!({})))
        }
        "wrong content type" => {
            content_type = ["text/plain", "application/xml", "application/octet-stream"]
                .choose(dice)
                .copied();
            json_body(envelope(bound_type, json!({})))
        }
        _ => unreachable!("unknown kind {kind}"),
    };
    Message {
        kind,
        body,
        content_type,
    }
}

/// A 5 MB body: an envelope-looking object with a huge field and no payload.
fn huge(dice: &mut StdRng) -> Message {
    let pad = random_text(dice, 5 * 1024 * 1024).replace(['"', '\\'], "x");
    let body = format!(r#"{{"type": "order.placed", "pad": "{pad}"}}"#).into_bytes();
    Message {
        kind: "5 MB body",
        body,
        content_type: None,
    }
}

/// Whether an outside consumer (the simulated carrier) is expected to dead-letter `kind`.
fn outsider_dead_letters(kind: &str) -> bool {
    !["unknown type", "wrong content type"].contains(&kind)
}

/// The messages of one wave: every kind once per queue plus `extra` random ones per queue, and
/// a 5 MB body per queue if `huge_ones`.
pub async fn inject(
    env: &TestEnv,
    dice: &mut StdRng,
    extra: usize,
    huge_ones: bool,
) -> Vec<Hostile> {
    let names = env.names();
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let mut sent = Vec::new();
    for (queue, bound_type, ours) in QUEUES {
        let mut messages: Vec<Message> = KINDS.iter().map(|k| make(dice, k, bound_type)).collect();
        for _ in 0..extra {
            let kind = KINDS.choose(dice).copied().unwrap_or("not json");
            messages.push(make(dice, kind, bound_type));
        }
        if huge_ones {
            messages.push(huge(dice));
        }
        for m in messages {
            if !ours && !outsider_dead_letters(m.kind) {
                continue;
            }
            let id = Uuid::now_v7();
            let mut properties = BasicProperties::default()
                .with_message_id(id.to_string().into())
                .with_delivery_mode(2);
            if let Some(ct) = m.content_type {
                properties = properties.with_content_type(ct.into());
            }
            publish(&channel, &names.queue(queue), &m.body, properties).await;
            sent.push(Hostile {
                queue,
                kind: m.kind,
                id,
                bytes: m.body.len(),
            });
        }
    }
    let _ = connection.close(200, "injected".into()).await;
    sent
}

async fn publish(channel: &Channel, queue: &str, body: &[u8], properties: BasicProperties) {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            body,
            properties,
        )
        .await
        .expect("publish")
        .await
        .expect("confirmed");
}

/// Takes every message out of each `<queue>.dead`: message id → the reason it carries (ours in
/// `x-orderflow-reason`, else the broker's in `x-death`).
pub async fn dead_letters(env: &TestEnv) -> BTreeMap<String, String> {
    let names = env.names();
    let connection = env.connect_broker().await;
    let channel = connection.create_channel().await.expect("channel");
    let mut found = BTreeMap::new();
    for (queue, ..) in QUEUES {
        let dead = names.queue(&format!("{queue}.dead"));
        while let Some(message) = channel
            .basic_get(dead.as_str().into(), BasicGetOptions::default())
            .await
            .expect("basic.get")
        {
            let delivery = message.delivery;
            let id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            let headers = delivery.properties.headers().clone().unwrap_or_default();
            found.insert(id, reason(&headers));
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
        }
    }
    let _ = connection.close(200, "read".into()).await;
    found
}

fn reason(headers: &FieldTable) -> String {
    let text = |v: &AMQPValue| match v {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    };
    if let Some(r) = headers.inner().get("x-orderflow-reason").and_then(text) {
        return r;
    }
    if let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death")
        && let Some(AMQPValue::FieldTable(first)) = deaths.as_slice().first()
        && let Some(r) = first.inner().get("reason").and_then(text)
    {
        return format!("broker: {r}");
    }
    String::new()
}
