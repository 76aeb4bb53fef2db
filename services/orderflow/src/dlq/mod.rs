//! `orderflow dlq`: the dead-letter queues (`<queue>.dead` of every work queue, and of every
//! carrier's queue) — list, show, replay, purge.
//!
//! Reading never loses a dead letter: every message is fetched with `basic.get` without
//! auto-ack and held unacknowledged; when the listing is done, all that were not replayed are
//! given back with `basic.nack(requeue)`. Were the process to die in between, the broker returns
//! them anyway when the channel closes. A replay publishes the original body (and properties,
//! without the dead-letter headers) to the original exchange and routing key, waits for the
//! broker's confirm, and only then acks the dead letter; the consumers' inbox makes a replay of
//! something already handled a no-op.

use std::collections::BTreeSet;

use anyhow::Context;
use clap::Subcommand;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use orderflow_runtime::Settings;
use orderflow_runtime::amqp::Publisher;
use orderflow_runtime::topology::Names;

mod letter;

pub use letter::DeadLetter;
use letter::{describe, without_dead_letter_headers};

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Every dead letter: queue, id, type, reason, original queue and routing key, deliveries.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One dead letter (by id) with its headers and body.
    Show { id: String },
    /// Republish a dead letter (by id), or every one with `--all`, to where it was first sent.
    Replay {
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Delete every dead letter (asks for `--yes`).
    Purge {
        #[arg(long)]
        yes: bool,
    },
}

/// The unprefixed names of every dead-letter queue the topology has.
pub async fn dead_queues(settings: &Settings) -> Vec<String> {
    let mut names = BTreeSet::new();
    let mut specs = crate::up::specs();
    if let Ok(shipping) = settings.section::<shipping::settings::ShippingSettings>("shipping") {
        specs.push(shipping::spec_with(&shipping));
    }
    for spec in specs {
        for queue in spec.queues {
            names.insert(queue.dead_letter_name());
        }
    }
    // Carriers registered at runtime live in shipping's table.
    for code in carrier_codes(settings).await {
        names.insert(format!("carrier.{code}.dead"));
    }
    names.into_iter().collect()
}

/// Codes of the carriers in shipping's registry (none when it cannot be read).
async fn carrier_codes(settings: &Settings) -> Vec<String> {
    let Ok(pool) = crate::check::database(settings).await else {
        return Vec::new();
    };
    let codes = sqlx::query_scalar("SELECT code FROM shipping.carriers")
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
    pool.close().await;
    codes
}

/// A connection and the dead letters of every queue, held unacknowledged until [`Browse::finish`].
pub struct Browse {
    connection: Connection,
    names: Names,
    held: Vec<(Channel, Vec<(u64, DeadLetter)>)>,
}

impl Browse {
    pub async fn open(settings: &Settings) -> anyhow::Result<Browse> {
        let connection = Connection::connect(
            settings.amqp.url.expose(),
            ConnectionProperties::default()
                .with_connection_name(format!("{}orderflow/dlq", settings.amqp.prefix).into()),
        )
        .await
        .context("connecting to RabbitMQ")?;
        let names = Names {
            prefix: settings.amqp.prefix.clone(),
        };
        let mut held = Vec::new();
        for queue in dead_queues(settings).await {
            // A queue that does not exist closes the channel: one channel per queue.
            let channel = connection.create_channel().await?;
            let declared = channel
                .queue_declare(
                    names.queue(&queue).as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await;
            let Ok(declared) = declared else { continue };
            let mut letters = Vec::new();
            for _ in 0..declared.message_count() {
                let got = channel
                    .basic_get(
                        names.queue(&queue).as_str().into(),
                        BasicGetOptions { no_ack: false },
                    )
                    .await?;
                let Some(message) = got else { break };
                let delivery = message.delivery;
                letters.push((
                    delivery.delivery_tag,
                    describe(
                        &names,
                        settings.amqp.delivery_limit,
                        &queue,
                        delivery.data,
                        delivery.properties,
                    ),
                ));
            }
            held.push((channel, letters));
        }
        Ok(Browse {
            connection,
            names,
            held,
        })
    }

    pub fn letters(&self) -> impl Iterator<Item = &DeadLetter> {
        self.held.iter().flat_map(|(_, l)| l.iter().map(|(_, d)| d))
    }

    /// Replays the letters `which` selects; returns how many were replayed.
    pub async fn replay(&mut self, which: impl Fn(&DeadLetter) -> bool) -> anyhow::Result<usize> {
        let channel = self.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let publisher = Publisher::from_channel(channel, self.names.clone());
        let mut replayed = 0;
        for (channel, letters) in &mut self.held {
            let mut kept = Vec::new();
            for (tag, letter) in letters.drain(..) {
                if !which(&letter) {
                    kept.push((tag, letter));
                    continue;
                }
                let published = publisher
                    .publish_raw(
                        &letter.exchange,
                        &letter.routing_key,
                        &letter.raw,
                        without_dead_letter_headers(&letter.properties),
                    )
                    .await;
                match published {
                    Ok(()) => {
                        channel.basic_ack(tag, BasicAckOptions::default()).await?;
                        replayed += 1;
                    }
                    Err(e) => {
                        eprintln!("{}: not replayed ({e}); it stays dead-lettered", letter.id);
                        kept.push((tag, letter));
                    }
                }
            }
            *letters = kept;
        }
        Ok(replayed)
    }

    /// Gives every held letter back to its queue and closes the connection.
    pub async fn finish(self) -> anyhow::Result<()> {
        for (channel, letters) in &self.held {
            for (tag, _) in letters {
                channel
                    .basic_nack(
                        *tag,
                        BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        },
                    )
                    .await?;
            }
        }
        let _ = self.connection.close(200, "done".into()).await;
        Ok(())
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

pub async fn run(settings: &Settings, command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { json } => {
            let browse = Browse::open(settings).await?;
            let letters: Vec<&DeadLetter> = browse.letters().collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else if letters.is_empty() {
                println!("no dead letters");
            } else {
                println!(
                    "{:<28} {:<38} {:<26} {:>4}  REASON",
                    "QUEUE", "ID", "TYPE", "DLV"
                );
                for l in &letters {
                    println!(
                        "{:<28} {:<38} {:<26} {:>4}  {}",
                        l.original_queue,
                        l.id,
                        l.kind.as_deref().unwrap_or("-"),
                        l.deliveries,
                        one_line(&l.reason, 100)
                    );
                }
                println!("{} dead letter(s)", letters.len());
            }
            browse.finish().await
        }
        DlqCommand::Show { id } => {
            let browse = Browse::open(settings).await?;
            let found: Vec<&DeadLetter> = browse.letters().filter(|l| l.id == id).collect();
            let missing = found.is_empty();
            if !missing {
                println!("{}", serde_json::to_string_pretty(&found)?);
            }
            browse.finish().await?;
            anyhow::ensure!(!missing, "no dead letter with id {id}");
            Ok(())
        }
        DlqCommand::Replay { id, all } => {
            let mut browse = Browse::open(settings).await?;
            let replayed = browse
                .replay(|l| all || id.as_deref() == Some(l.id.as_str()))
                .await;
            let remaining = browse.letters().count();
            browse.finish().await?;
            let replayed = replayed?;
            println!("replayed {replayed} dead letter(s); {remaining} remain");
            anyhow::ensure!(all || replayed > 0, "no dead letter replayed");
            Ok(())
        }
        DlqCommand::Purge { yes } => {
            let connection =
                Connection::connect(settings.amqp.url.expose(), ConnectionProperties::default())
                    .await
                    .context("connecting to RabbitMQ")?;
            let names = Names {
                prefix: settings.amqp.prefix.clone(),
            };
            let mut total = 0;
            for queue in dead_queues(settings).await {
                let channel = connection.create_channel().await?;
                let name = names.queue(&queue);
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                let Ok(declared) = channel
                    .queue_declare(name.as_str().into(), passive, FieldTable::default())
                    .await
                else {
                    continue;
                };
                let count = declared.message_count();
                if count == 0 {
                    continue;
                }
                if yes {
                    let purged = channel
                        .queue_purge(name.as_str().into(), QueuePurgeOptions::default())
                        .await?;
                    println!("{queue}: purged {purged}");
                    total += purged;
                } else {
                    println!("{queue}: {count} dead letter(s)");
                    total += count;
                }
            }
            let _ = connection.close(200, "done".into()).await;
            if !yes && total > 0 {
                anyhow::bail!("{total} dead letter(s) would be deleted; run again with --yes");
            }
            Ok(())
        }
    }
}
