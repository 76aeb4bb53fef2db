//! `orderflow definitions`: the broker's definitions (RabbitMQ's import format, loaded at boot)
//! generated from the code's topology, so the broker an operator provisions is exactly the one
//! the services declare: the vhost, the four exchanges, every queue with its arguments, its
//! bindings and its dead-letter queue, and one broker user per service, per carrier and for the
//! operator. There is no `guest`.
//!
//! Each service and carrier user may configure, write and read only what its process touches
//! (the permission each AMQP operation needs is RabbitMQ's access-control table):
//! - configure: the four exchanges (every process declares them, idempotently, at start) and its
//!   own queues and their `.dead` queues;
//! - write: its own queues (`queue.bind`), `orderflow.dlx` (declaring a queue with a dead-letter
//!   exchange, and dead-lettering), and the exchange it publishes to: `orderflow.events` for a
//!   service, `orderflow.carriers` for the service that owns carrier queues, and
//!   `orderflow.carrier-events` for a carrier;
//! - read: its own queues and the exchanges it binds them to.
//!
//! Topic permissions narrow the routing keys on the three topic exchanges: a service binds only
//! the keys it consumes and publishes only domain events (`order.*`, `payment.*`, `stock.*`: the
//! catalogue's aggregates). The code does not record which service publishes which event, so a
//! narrower list would be a hand-kept copy that breaks a deployment the day a service publishes
//! something new. A carrier publishes only `<its code>.<carrier reply type>`; dead letters go
//! only under the user's own queue names.
//!
//! The ops console (`order-intake`'s `/console`) has a user of its own, `orderflow-console`, for
//! both of its jobs, so intake's own user stays least-privilege:
//! - RabbitMQ's management API, to list the vhost's queues with depths and rates: the
//!   `management` tag, which shows every queue of the vhosts the user has permissions in. Not
//!   `monitoring`, which would also show every other vhost, every connection and the nodes.
//! - AMQP, for dead letters: read every `.dead` queue (`basic.get`, and `queue.purge` for an
//!   admin's purge; the passive declare that counts a queue needs no permission), and write the
//!   exchanges a replay republishes to: `orderflow.events` (domain events only, like a service),
//!   `orderflow.carriers` and `orderflow.carrier-events` (a carrier's reply types, any carrier,
//!   as carriers are registered at runtime). It configures nothing, binds nothing, reads no
//!   work queue and cannot publish to `orderflow.dlx`; a letter first published through the
//!   default exchange (no orderflow process does that) cannot be replayed with it.
//!
//! Passwords never live in git: the committed `deploy/rabbitmq/definitions.json` has no password
//! hashes (such users cannot log in). `--users-from-env` fills in a salted SHA-256 hash (the
//! broker's `rabbit_password_hashing_sha256`) for each user from
//! `ORDERFLOW_BROKER_USERS__<USER>` (user name upper-cased, `-` as `_`), at deploy time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, bail};
use base64::Engine;
use orderflow_messages::{Exchange, Route, catalogue};
use orderflow_runtime::Settings;
use orderflow_runtime::config::Secret;
use orderflow_runtime::topology::Names;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The vhost orderflow's deployments use (`AMQP_URL=amqp://<user>:<password>@<host>/orderflow`).
pub const VHOST: &str = "orderflow";
/// The operator's user: the management UI, `orderflow dlq`, imports.
pub const ADMIN_USER: &str = "orderflow-admin";
/// The ops console's user: the management API's queue list, and dead letters over AMQP.
pub const CONSOLE_USER: &str = "orderflow-console";
/// The settings section holding the users' passwords (`ORDERFLOW_BROKER_USERS__<USER>`).
pub const PASSWORDS_SECTION: &str = "broker_users";

#[derive(clap::Args)]
pub struct DefinitionsArgs {
    /// Hash each user's password from ORDERFLOW_BROKER_USERS__<USER> (deploy time); without
    /// it the users have no password and cannot log in (the file committed to git).
    #[arg(long)]
    users_from_env: bool,
    /// Write the definitions to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn run(settings: &Settings, args: DefinitionsArgs) -> anyhow::Result<()> {
    let mut definitions = generate(settings);
    if args.users_from_env {
        let passwords: BTreeMap<String, Secret> = settings.section(PASSWORDS_SECTION)?;
        set_passwords(&mut definitions, &passwords)?;
    }
    let text = serde_json::to_string_pretty(&definitions)? + "\n";
    match args.output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote the broker definitions to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// What one user may do, as regular-expression alternatives (names escaped).
#[derive(Default)]
struct Grant {
    configure: BTreeSet<String>,
    write: BTreeSet<String>,
    read: BTreeSet<String>,
    /// Per topic exchange: routing keys it may publish, binding keys it may bind.
    topics: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
}

/// The definitions for `settings` (its prefix and delivery limit), users without passwords.
pub fn generate(settings: &Settings) -> Value {
    let topology = crate::up::topology(settings);
    let names = Names {
        prefix: settings.amqp.prefix.clone(),
    };
    let exchange = |e: Exchange| names.exchange(e);
    let all_exchanges: BTreeSet<String> = Exchange::ALL
        .iter()
        .map(|e| escape(&exchange(*e)))
        .collect();
    let topic_exchanges: Vec<String> = Exchange::ALL
        .iter()
        .filter(|e| e.kind() == "topic")
        .map(|e| exchange(*e))
        .collect();
    let queues = topology["queues"].as_array().cloned().unwrap_or_default();

    let mut declared = Vec::new();
    let mut bindings = Vec::new();
    let mut grants: BTreeMap<String, Grant> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut carriers: Vec<(String, String)> = Vec::new();
    let mut dead_queues: BTreeSet<String> = BTreeSet::new();
    for queue in &queues {
        let name = text(&queue["name"]);
        let dead = text(&queue["dead_letter_queue"]);
        let service = text(&queue["service"]);
        declared.push(json!({"name": name, "vhost": VHOST, "durable": true,
            "auto_delete": false, "arguments": queue["arguments"]}));
        declared.push(json!({"name": dead, "vhost": VHOST, "durable": true,
            "auto_delete": false, "arguments": queue["dead_letter_arguments"]}));
        bindings.push(binding(&exchange(Exchange::DeadLetters), &dead, &name));

        if !order.contains(&service) {
            order.push(service.clone());
        }
        let grant = grants.entry(service).or_default();
        let carrier_queue = queue["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|b| text(&b["exchange"]) == exchange(Exchange::Carriers));
        if carrier_queue {
            // The owner of carrier queues sends the carriers' commands and registers carriers
            // at runtime (declaring `carrier.<code>` then): any carrier code, not only these.
            let any = format!(r"{}carrier\.[a-z0-9_-]+", escape(&names.prefix));
            dead_queues.insert(format!(r"{any}\.dead"));
            own_queue(grant, &names, any.clone(), format!(r"{any}\.dead"));
            grant.write.insert(escape(&exchange(Exchange::Carriers)));
        } else {
            dead_queues.insert(escape(&dead));
            own_queue(grant, &names, escape(&name), escape(&dead));
        }
        grant.write.insert(escape(&exchange(Exchange::Events)));
        for b in queue["bindings"].as_array().into_iter().flatten() {
            let (source, key) = (text(&b["exchange"]), text(&b["routing_key"]));
            bindings.push(binding(&source, &name, &key));
            grant.read.insert(escape(&source));
            if source == exchange(Exchange::Carriers) {
                carriers.push((key.clone(), name.clone()));
            } else {
                topic(grant, &source).1.insert(escape(&key));
            }
        }
    }
    let events = exchange(Exchange::Events);
    for grant in grants.values_mut() {
        topic(grant, &events);
    }
    for (code, queue) in &carriers {
        let user = format!("carrier-{code}");
        let grant = grants.entry(user.clone()).or_default();
        own_queue(
            grant,
            &names,
            escape(queue),
            escape(&format!("{queue}.dead")),
        );
        grant.read.insert(escape(&exchange(Exchange::Carriers)));
        grant
            .write
            .insert(escape(&exchange(Exchange::CarrierEvents)));
        let replies = catalogue::all()
            .iter()
            .filter(|e| e.route == Route::FromCarrier)
            .map(|e| escape(&format!("{code}.{}", e.name)))
            .collect::<Vec<_>>();
        topic(grant, &exchange(Exchange::CarrierEvents))
            .0
            .extend(replies);
        order.push(user);
    }

    let mut users = Vec::new();
    let mut permissions = Vec::new();
    let mut topic_permissions = Vec::new();
    for user in &order {
        let Some(grant) = grants.get_mut(user) else {
            continue;
        };
        // Every process declares the exchanges at start.
        grant.configure.extend(all_exchanges.iter().cloned());
        users.push(json!({"name": user, "password_hash": "",
            "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}));
        permissions.push(json!({"user": user, "vhost": VHOST,
            "configure": exactly(&grant.configure), "write": exactly(&grant.write),
            "read": exactly(&grant.read)}));
        for exchange in &topic_exchanges {
            let (write, read) = grant.topics.get(exchange).cloned().unwrap_or_default();
            let write = if *exchange == events && grant.topics.contains_key(exchange) {
                domain_events()
            } else {
                exactly(&write)
            };
            topic_permissions.push(json!({"user": user, "vhost": VHOST, "exchange": exchange,
                "write": write, "read": exactly(&read)}));
        }
    }
    users.push(json!({"name": ADMIN_USER, "password_hash": "",
        "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}));
    permissions.push(json!({"user": ADMIN_USER, "vhost": VHOST,
        "configure": ".*", "write": ".*", "read": ".*"}));
    let replayed_to: BTreeSet<String> = [
        Exchange::Events,
        Exchange::Carriers,
        Exchange::CarrierEvents,
    ]
    .iter()
    .map(|e| escape(&exchange(*e)))
    .collect();
    users.push(json!({"name": CONSOLE_USER, "password_hash": "",
        "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["management"]}));
    permissions.push(
        json!({"user": CONSOLE_USER, "vhost": VHOST, "configure": "^$",
        "write": exactly(&replayed_to), "read": exactly(&dead_queues)}),
    );
    let carrier_replies = catalogue::all()
        .iter()
        .filter(|e| e.route == Route::FromCarrier)
        .map(|e| escape(e.name))
        .collect::<Vec<_>>()
        .join("|");
    let carrier_events = exchange(Exchange::CarrierEvents);
    for exchange in &topic_exchanges {
        let write = if *exchange == events {
            domain_events()
        } else if *exchange == carrier_events {
            format!(r"^[a-z0-9_-]+\.({carrier_replies})$")
        } else {
            "^$".to_owned()
        };
        topic_permissions.push(json!({"user": CONSOLE_USER, "vhost": VHOST,
            "exchange": exchange, "write": write, "read": "^$"}));
    }

    let exchanges: Vec<Value> = topology["exchanges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            json!({"name": e["name"], "vhost": VHOST, "type": e["type"], "durable": true,
                "auto_delete": false, "internal": false, "arguments": {}})
        })
        .collect();
    json!({
        "users": users,
        "vhosts": [{"name": VHOST}],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "parameters": [],
        "global_parameters": [],
        "policies": [dead_letter_policy(&names)],
        "exchanges": exchanges,
        "queues": declared,
        "bindings": bindings,
    })
}

/// The `.dead` queues of an earlier release were made without an `x-delivery-limit` (which the
/// broker will not add to an existing queue, and a definitions import skips existing queues), so
/// RabbitMQ 4 would drop their letters after 20 reads; this policy gives them the same limit as
/// new ones. It matches only `.dead` queues and sets nothing else.
fn dead_letter_policy(names: &Names) -> Value {
    json!({"vhost": VHOST, "name": format!("{}dead-letters", names.prefix),
        "pattern": format!("^{}.*\\.dead$", escape(&names.prefix)), "apply-to": "queues",
        "priority": 0,
        "definition": {"delivery-limit": orderflow_runtime::topology::DEAD_LETTER_DELIVERY_LIMIT}})
}

/// A queue the user declares and consumes, with its dead-letter queue (both as patterns).
fn own_queue(grant: &mut Grant, names: &Names, queue: String, dead: String) {
    let dlx = names.exchange(Exchange::DeadLetters);
    grant.configure.extend([queue.clone(), dead.clone()]);
    grant.write.extend([queue.clone(), dead]);
    // Declaring a queue with a dead-letter exchange needs read on the queue and write on the
    // exchange; dead letters are published and bound under the queue's own name.
    grant.read.insert(queue.clone());
    grant.read.insert(escape(&dlx));
    grant.write.insert(escape(&dlx));
    let (write, read) = topic(grant, &dlx);
    write.insert(queue.clone());
    read.insert(queue);
}

fn topic<'g>(grant: &'g mut Grant, exchange: &str) -> &'g mut (BTreeSet<String>, BTreeSet<String>) {
    grant.topics.entry(exchange.to_owned()).or_default()
}

fn binding(source: &str, queue: &str, key: &str) -> Value {
    json!({"source": source, "vhost": VHOST, "destination": queue,
        "destination_type": "queue", "routing_key": key, "arguments": {}})
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Routing keys of domain events: `<aggregate>.<event>` for every aggregate in the catalogue
/// (`order`, `payment`, `stock`), so a new event of a known aggregate needs no new definitions.
fn domain_events() -> String {
    let aggregates: BTreeSet<&str> = catalogue::all()
        .iter()
        .filter(|e| e.route == Route::Events)
        .filter_map(|e| e.name.split_once('.').map(|(aggregate, _)| aggregate))
        .collect();
    let aggregates: Vec<String> = aggregates.into_iter().map(escape).collect();
    format!(r"^({})\.[a-z_]+$", aggregates.join("|"))
}

/// A regular expression matching exactly these patterns (`^$`, the empty name only, when none).
fn exactly(patterns: &BTreeSet<String>) -> String {
    if patterns.is_empty() {
        return "^$".to_owned();
    }
    format!(
        "^({})$",
        patterns.iter().cloned().collect::<Vec<_>>().join("|")
    )
}

fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if ".^$|?*+()[]{}\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Sets every user's `password_hash` from `passwords` (keyed by user name with `-` as `_`).
fn set_passwords(
    definitions: &mut Value,
    passwords: &BTreeMap<String, Secret>,
) -> anyhow::Result<()> {
    let users = definitions["users"].as_array_mut().context("no users")?;
    let mut missing = Vec::new();
    for user in users.iter_mut() {
        let name = text(&user["name"]);
        let key = name.replace('-', "_");
        let variable = format!(
            "ORDERFLOW_{}__{}",
            PASSWORDS_SECTION.to_uppercase(),
            key.to_uppercase()
        );
        match passwords.get(&key) {
            None => missing.push(variable),
            Some(password) => {
                check_password(&variable, password.expose())?;
                user["password_hash"] = Value::String(hash_password(password.expose()));
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "no password for {} broker user(s): set {}",
            missing.len(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// Passwords travel inside `AMQP_URL`, so they must not need percent-encoding.
fn check_password(variable: &str, password: &str) -> anyhow::Result<()> {
    if password.len() < 16 {
        bail!("{variable} is shorter than 16 characters: use e.g. `openssl rand -hex 32`");
    }
    if !password
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    {
        bail!(
            "{variable} holds characters an AMQP URL would need encoded: use letters, digits, \
             `-._~` (e.g. `openssl rand -hex 32`)"
        );
    }
    Ok(())
}

/// RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt ++ sha256(salt ++ password)), with
/// a random 4-byte salt.
fn hash_password(password: &str) -> String {
    let salt: [u8; 4] = rand::random();
    hash_with_salt(salt, password)
}

fn hash_with_salt(salt: [u8; 4], password: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    let mut bytes = salt.to_vec();
    bytes.extend_from_slice(&hasher.finalize());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests;
