//! Connections to RabbitMQ and the confirmed publisher.
//!
//! A service opens two connections: one to publish and one to consume, so a broker applying
//! flow control to publishers never stalls our consumers (and acks). Both use heartbeats and
//! lapin's automatic recovery, which reconnects and replays channels, topology and consumers.
//! When recovery gives up, [`Broker::watch`] reports it so the process can exit non-zero.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use orderflow_messages::{Envelope, Event, Exchange, Route};
use uuid::Uuid;

use crate::cluster::Target;
use crate::config::AmqpSettings;
use crate::topology::Names;

fn nodes(target: &Target) -> String {
    target
        .nodes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The two connections of a service.
pub struct Broker {
    pub publish: Connection,
    pub consume: Connection,
    pub names: Names,
}

impl Broker {
    /// Connects both connections; `service` names them in the broker's management UI.
    pub async fn connect(settings: &AmqpSettings, service: &str) -> anyhow::Result<Broker> {
        let mut target = Target::from_settings(settings)
            .map_err(|e| anyhow::anyhow!("{e} ({:?})", settings.url))?;
        if target.uri.query.heartbeat.is_none() {
            target.uri.query.heartbeat = Some(settings.heartbeat_secs);
        }
        let open = |role: &str| {
            // The prefix tells apart the connections of environments sharing a broker.
            let name = format!("{}{service}/{role}", settings.prefix);
            let props = ConnectionProperties::default()
                .with_connection_name(name.clone().into())
                .enable_auto_recover();
            let target = target.clone();
            async move { target.open(props, &name).await }
        };
        let publish = crate::first_connection::retry(
            "RabbitMQ",
            "amqp.connect_timeout_secs",
            Duration::from_secs(settings.connect_timeout_secs),
            || async {
                open("publish").await.with_context(|| {
                    format!(
                        "connecting to RabbitMQ at {:?} (nodes: {})",
                        settings.url,
                        nodes(&target)
                    )
                })
            },
        )
        .await?;
        let consume = open("consume")
            .await
            .context("opening the consume connection")?;
        Ok(Broker {
            publish,
            consume,
            names: Names {
                prefix: settings.prefix.clone(),
            },
        })
    }

    /// A publisher on its own confirm-mode channel of the publish connection.
    pub async fn publisher(&self) -> anyhow::Result<Publisher> {
        let channel = self.publish.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Publisher {
            channel,
            names: self.names.clone(),
        })
    }

    /// Both connections are up (not reconnecting, not closed).
    pub fn is_ready(&self) -> bool {
        self.publish.status().connected() && self.consume.status().connected()
    }

    /// Resolves when a connection is lost for good (recovery gave up), with the reason.
    pub async fn watch(&self) -> String {
        loop {
            for (role, conn) in [("publish", &self.publish), ("consume", &self.consume)] {
                let status = conn.status();
                if status.errored() || status.closed() {
                    return format!(
                        "the {role} connection to RabbitMQ is lost and did not recover"
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub async fn close(&self) {
        let _ = self.consume.close(200, "shutdown".into()).await;
        let _ = self.publish.close(200, "shutdown".into()).await;
    }
}

/// A message ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub exchange: Exchange,
    pub routing_key: String,
    pub message_id: Uuid,
    pub kind: String,
    pub correlation_id: Uuid,
    pub producer: String,
    pub body: Vec<u8>,
}

impl Outgoing {
    /// The routing key of `envelope` on its route; `carrier` is the carrier code for the two
    /// carrier routes (ignored on `orderflow.events`).
    pub fn from_envelope<E: Event>(
        envelope: &Envelope<E>,
        carrier: Option<&str>,
    ) -> anyhow::Result<Outgoing> {
        let routing_key = match E::ROUTE {
            Route::Events => E::TYPE.to_owned(),
            Route::ToCarrier => carrier
                .context("a carrier command needs the carrier's code")?
                .to_owned(),
            Route::FromCarrier => format!(
                "{}.{}",
                carrier.context("a carrier reply needs the carrier's code")?,
                E::TYPE
            ),
        };
        Ok(Outgoing {
            exchange: E::ROUTE.exchange(),
            routing_key,
            message_id: envelope.message_id,
            kind: E::TYPE.to_owned(),
            correlation_id: envelope.correlation_id,
            producer: envelope.producer.clone(),
            body: serde_json::to_vec(envelope)?,
        })
    }
}

/// Why one message was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("unroutable: no queue is bound to {exchange} with key `{routing_key}`")]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
    #[error("the broker refused the message (nack)")]
    Nacked,
    /// Neither confirmed nor refused within [`CONFIRM_TIMEOUT`]: whether it arrived is unknown,
    /// so the sender keeps it and sends it again (receivers deduplicate).
    #[error("not confirmed within {} s", CONFIRM_TIMEOUT.as_secs())]
    Unconfirmed,
    #[error(transparent)]
    Broker(#[from] lapin::Error),
}

/// Longest a batch waits for the broker's confirms. A connection that dies without the client
/// noticing would otherwise hold the sender (and the outbox rows it locked) forever.
pub const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Publishes with confirms and `mandatory`: a message counts as sent only once the broker has
/// confirmed it, and a message no queue would receive is an error, not a silent drop.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    names: Names,
}

impl Publisher {
    /// A publisher on `channel`, which must be in confirm mode.
    pub fn from_channel(channel: Channel, names: Names) -> Publisher {
        Publisher { channel, names }
    }

    fn properties(&self, msg: &Outgoing) -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert(
            ShortString::from("traceparent"),
            AMQPValue::LongString(LongString::from(crate::telemetry::traceparent(
                msg.correlation_id,
            ))),
        );
        BasicProperties::default()
            .with_message_id(msg.message_id.to_string().into())
            .with_type(msg.kind.clone().into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
            .with_correlation_id(msg.correlation_id.to_string().into())
            .with_app_id(msg.producer.clone().into())
            .with_headers(headers)
    }

    /// Publishes every message, pipelined, then waits for all confirms. One result per message,
    /// in order.
    pub async fn publish_all(&self, messages: &[Outgoing]) -> Vec<Result<(), PublishError>> {
        let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
        let mut pending = Vec::with_capacity(messages.len());
        for msg in messages {
            // Past the deadline the rest is not sent at all: it is sent again later anyway.
            if tokio::time::Instant::now() >= deadline {
                pending.push(None);
                continue;
            }
            let publishing = self.channel.basic_publish(
                self.names.exchange(msg.exchange).into(),
                msg.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &msg.body,
                self.properties(msg),
            );
            pending.push(tokio::time::timeout_at(deadline, publishing).await.ok());
        }
        let mut results = Vec::with_capacity(messages.len());
        for (msg, sent) in messages.iter().zip(pending) {
            let result = match sent {
                None => Err(PublishError::Unconfirmed),
                Some(Err(e)) => Err(PublishError::Broker(e)),
                Some(Ok(confirm)) => match tokio::time::timeout_at(deadline, confirm).await {
                    Err(_) => Err(PublishError::Unconfirmed),
                    Ok(Ok(Confirmation::Ack(None))) => Ok(()),
                    Ok(Ok(Confirmation::Ack(Some(_)))) => Err(PublishError::Unroutable {
                        exchange: self.names.exchange(msg.exchange),
                        routing_key: msg.routing_key.clone(),
                    }),
                    Ok(Ok(Confirmation::Nack(_))) => Err(PublishError::Nacked),
                    Ok(Ok(Confirmation::NotRequested)) => Ok(()),
                    Ok(Err(e)) => Err(PublishError::Broker(e)),
                },
            };
            if result.is_ok() {
                metrics::counter!("orderflow_messages_published_total", "exchange" => msg.exchange.name())
                    .increment(1);
                metrics::counter!("orderflow_published_bytes_total")
                    .increment(msg.body.len() as u64);
            }
            results.push(result);
        }
        results
    }

    /// Publishes one envelope and waits for its confirm.
    pub async fn publish<E: Event>(
        &self,
        envelope: &Envelope<E>,
        carrier: Option<&str>,
    ) -> anyhow::Result<()> {
        let msg = Outgoing::from_envelope(envelope, carrier)?;
        self.publish_all(std::slice::from_ref(&msg))
            .await
            .pop()
            .unwrap_or(Ok(()))?;
        Ok(())
    }

    /// Publishes raw bytes with the given headers (dead-lettering, replays), confirmed.
    pub async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        metrics::counter!("orderflow_messages_published_total", "exchange" => "raw").increment(1);
        let publishing = async {
            self.channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    body,
                    properties,
                )
                .await?
                .await
        };
        let confirm = tokio::time::timeout(CONFIRM_TIMEOUT, publishing)
            .await
            .map_err(|_| PublishError::Unconfirmed)??;
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => Err(PublishError::Unroutable {
                exchange: exchange.to_owned(),
                routing_key: routing_key.to_owned(),
            }),
            Confirmation::Nack(_) => Err(PublishError::Nacked),
        }
    }

    /// Waits until the channel has recovered from `error` (or gives the error back).
    pub async fn wait_for_recovery(&self, error: lapin::Error) -> lapin::Result<()> {
        self.channel.wait_for_recovery(error).await
    }

    pub fn names(&self) -> &Names {
        &self.names
    }
}

/// Consumes `listener` events only to log them; blocked connections are worth a warning.
pub fn log_events(service: &'static str, conn: &Connection) {
    let mut events = conn.events_listener();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                lapin::Event::ConnectionBlocked(reason) => {
                    tracing::warn!(service, %reason, "broker blocked the connection")
                }
                lapin::Event::Error(error) => {
                    tracing::warn!(service, %error, "broker connection error")
                }
                other => tracing::debug!(service, ?other, "broker connection event"),
            }
        }
    });
}
