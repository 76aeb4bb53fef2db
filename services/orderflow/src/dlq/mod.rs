//! `orderflow dlq`: the dead-letter queues (`<queue>.dead` of every work queue, and of every
//! carrier's queue) — list, show, replay, purge.
//!
//! How letters are read, replayed and purged without losing one is
//! [`orderflow_runtime::dead_letter`]'s business (intake's ops console shares it).

use std::collections::BTreeSet;

use clap::Subcommand;
use orderflow_runtime::Settings;
pub use orderflow_runtime::dead_letter::DeadLetter;
use orderflow_runtime::dead_letter::{self, Browse};

/// How the CLI's broker connection is named.
const CONNECTION_NAME: &str = "orderflow/dlq";

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

/// Every dead letter of the topology, held until [`Browse::finish`].
pub async fn browse(settings: &Settings) -> anyhow::Result<Browse> {
    Browse::open(settings, &dead_queues(settings).await, CONNECTION_NAME).await
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
            let browse = browse(settings).await?;
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
            let browse = browse(settings).await?;
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
            let mut browse = browse(settings).await?;
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
            let queues = dead_queues(settings).await;
            let counts = dead_letter::purge(settings, &queues, yes, CONNECTION_NAME).await?;
            let total: u32 = counts.iter().map(|(_, n)| n).sum();
            for (queue, count) in &counts {
                if yes {
                    println!("{queue}: purged {count}");
                } else {
                    println!("{queue}: {count} dead letter(s)");
                }
            }
            if !yes && total > 0 {
                anyhow::bail!("{total} dead letter(s) would be deleted; run again with --yes");
            }
            Ok(())
        }
    }
}
