//! The broker topology, as data: exchanges from [`Exchange::ALL`], and each service's queues
//! with the bindings derived from the event types they consume. The same description declares
//! the topology at start-up and can be exported (`orderflow topology`).
//!
//! Every work queue is a quorum queue (replicated, durable, poison-message aware) with an
//! explicit `x-delivery-limit`, and dead-letters into `orderflow.dlx` with the queue's own name as
//! routing key, so its dead letters land in exactly one queue, `<queue>.dead`, even when several
//! queues consume the same event type.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ExchangeKind};
use orderflow_messages::{Event, Exchange, Route};

/// One binding of a queue: an exchange and a routing-key pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub exchange: Exchange,
    pub key: String,
}

/// A queue a service consumes from, and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Unprefixed name, `<service>.<purpose>`, e.g. `verification.orders`.
    pub name: String,
    pub bindings: Vec<Binding>,
}

impl QueueSpec {
    pub fn new(name: impl Into<String>) -> Self {
        QueueSpec {
            name: name.into(),
            bindings: Vec::new(),
        }
    }

    /// Binds the queue to the event type `E` where it is published: `orderflow.events` with key
    /// `E::TYPE`, or for carrier replies `orderflow.carrier-events` with key `*.E::TYPE` (any
    /// carrier).
    pub fn bind<E: Event>(mut self) -> Self {
        let binding = match E::ROUTE {
            Route::Events => Binding {
                exchange: Exchange::Events,
                key: E::TYPE.to_owned(),
            },
            Route::FromCarrier => Binding {
                exchange: Exchange::CarrierEvents,
                key: format!("*.{}", E::TYPE),
            },
            // Commands to a carrier are routed by carrier code; see `carrier`.
            Route::ToCarrier => return self,
        };
        self.bindings.push(binding);
        self
    }

    /// The queue of the carrier `code`: `orderflow.carriers` with key `code`.
    pub fn carrier(code: &str) -> Self {
        QueueSpec {
            name: format!("carrier.{code}"),
            bindings: vec![Binding {
                exchange: Exchange::Carriers,
                key: code.to_owned(),
            }],
        }
    }

    /// The name of this queue's dead-letter queue.
    pub fn dead_letter_name(&self) -> String {
        format!("{}.dead", self.name)
    }
}

/// Names as deployed: `prefix` in front of every exchange and queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn exchange(&self, exchange: Exchange) -> String {
        format!("{}{}", self.prefix, exchange.name())
    }

    pub fn queue(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }
}

fn short(s: &str) -> ShortString {
    s.into()
}

/// Declares the four exchanges (idempotent).
pub async fn declare_exchanges(channel: &Channel, names: &Names) -> lapin::Result<()> {
    for exchange in Exchange::ALL {
        let kind = match exchange.kind() {
            "direct" => ExchangeKind::Direct,
            _ => ExchangeKind::Topic,
        };
        channel
            .exchange_declare(
                short(&names.exchange(exchange)),
                kind,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Arguments of a work queue: quorum, delivery limit, dead-lettering to `<queue>.dead`.
pub fn queue_arguments(names: &Names, queue: &QueueSpec, delivery_limit: u32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        short("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    // Without an explicit limit RabbitMQ 3.x redelivers a poison message forever and 4.x uses
    // 20; we want the same behaviour on both.
    args.insert(
        short("x-delivery-limit"),
        AMQPValue::LongUInt(delivery_limit),
    );
    args.insert(
        short("x-dead-letter-exchange"),
        AMQPValue::LongString(LongString::from(names.exchange(Exchange::DeadLetters))),
    );
    args.insert(
        short("x-dead-letter-routing-key"),
        AMQPValue::LongString(LongString::from(names.queue(&queue.name))),
    );
    // At-least-once dead-lettering: the broker keeps a dead letter until `<queue>.dead` has
    // confirmed it, so nothing is lost between the two queues. It requires reject-publish.
    args.insert(
        short("x-dead-letter-strategy"),
        AMQPValue::LongString(LongString::from("at-least-once")),
    );
    args.insert(
        short("x-overflow"),
        AMQPValue::LongString(LongString::from("reject-publish")),
    );
    args
}

/// `x-delivery-limit` of every `.dead` queue: as good as unlimited, on every broker version.
///
/// RabbitMQ 4 gives a quorum queue without a limit a limit of 20, and a `.dead` queue has no
/// dead-letter target of its own, so at the 21st read a dead letter would be dropped — and every
/// browse (`basic.get`, then `basic.nack` with requeue, or a closed channel) counts as a
/// delivery there (measured on 4.0.5: gone after 20 `orderflow dlq list`). `-1`, which 4.x
/// reads as "no limit", drops the message at its first return on 3.x (measured on 3.10.8); the
/// largest 32-bit value is accepted by both and is never reached.
pub const DEAD_LETTER_DELIVERY_LIMIT: u32 = i32::MAX as u32;

/// Arguments of a dead-letter queue: quorum (replicated like the work queues), and a delivery
/// limit that is never reached, so reading dead letters never loses one.
pub fn dead_letter_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        short("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    args.insert(
        short("x-delivery-limit"),
        AMQPValue::LongUInt(DEAD_LETTER_DELIVERY_LIMIT),
    );
    args
}

/// Declares `queue` with its bindings and its dead-letter queue (idempotent), on channels of
/// its own on `connection`.
///
/// A `.dead` queue made by an earlier release has no `x-delivery-limit`, and the broker refuses
/// to declare it again with one (`PRECONDITION_FAILED`); it is then used as it is and a warning
/// says how to keep its letters on RabbitMQ 4 (the policy the compose definitions carry). Its
/// letters are never moved to make a new queue.
pub async fn declare_queue(
    connection: &Connection,
    names: &Names,
    queue: &QueueSpec,
    delivery_limit: u32,
) -> lapin::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let dead = names.queue(&queue.dead_letter_name());
    let channel = connection.create_channel().await?;
    if let Err(refused) = channel
        .queue_declare(short(&dead), durable, dead_letter_arguments())
        .await
    {
        let channel = connection.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..durable
        };
        if channel
            .queue_declare(short(&dead), passive, FieldTable::default())
            .await
            .is_err()
        {
            return Err(refused);
        }
        tracing::warn!(
            queue = %dead,
            error = %refused,
            "this dead-letter queue was made without an explicit delivery limit: RabbitMQ 4 \
             drops its letters after 20 reads. Apply the policy of deploy/rabbitmq/definitions.json \
             (rabbitmqctl set_policy --apply-to queues dead-letters '\\.dead$' \
             '{{\"delivery-limit\": 2147483647}}'), or move its letters and delete it"
        );
        let _ = channel.close(200, "dead-letter queue checked".into()).await;
    } else {
        let _ = channel
            .close(200, "dead-letter queue declared".into())
            .await;
    }

    let channel = connection.create_channel().await?;
    channel
        .queue_bind(
            short(&dead),
            short(&names.exchange(Exchange::DeadLetters)),
            short(&names.queue(&queue.name)),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let name = names.queue(&queue.name);
    remember(names, [dead.clone(), name.clone()]);
    channel
        .queue_declare(
            short(&name),
            durable,
            queue_arguments(names, queue, delivery_limit),
        )
        .await?;
    for binding in &queue.bindings {
        channel
            .queue_bind(
                short(&name),
                short(&names.exchange(binding.exchange)),
                short(&binding.key),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let _ = channel.close(200, "queue declared".into()).await;
    Ok(())
}

/// Every queue this process declared, by prefix: what a test environment deletes afterwards.
static DECLARED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn remember(names: &Names, queues: [String; 2]) {
    if let Ok(mut declared) = DECLARED.lock() {
        for q in queues {
            let entry = (names.prefix.clone(), q);
            if !declared.contains(&entry) {
                declared.push(entry);
            }
        }
    }
}

/// The queues this process declared under `prefix`.
pub fn declared_with_prefix(prefix: &str) -> Vec<String> {
    DECLARED
        .lock()
        .map(|d| {
            d.iter()
                .filter(|(p, _)| p == prefix)
                .map(|(_, q)| q.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_messages::{order, shipment};

    #[test]
    fn bindings_come_from_the_event_types() {
        let q = QueueSpec::new("shipping.orders")
            .bind::<order::Packed>()
            .bind::<shipment::LabelCreated>();
        assert_eq!(
            q.bindings,
            vec![
                Binding {
                    exchange: Exchange::Events,
                    key: "order.packed".into()
                },
                Binding {
                    exchange: Exchange::CarrierEvents,
                    key: "*.shipment.label_created".into()
                },
            ]
        );
        assert_eq!(QueueSpec::carrier("sim").bindings[0].key, "sim");
    }

    #[test]
    fn dead_letters_are_routed_by_queue_name() {
        let names = Names {
            prefix: "t1.".into(),
        };
        let q = QueueSpec::new("billing.orders");
        let args = queue_arguments(&names, &q, 7);
        let inner = args.inner();
        assert_eq!(
            inner.get("x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString("t1.billing.orders".into()))
        );
        assert_eq!(inner.get("x-delivery-limit"), Some(&AMQPValue::LongUInt(7)));
    }
}
