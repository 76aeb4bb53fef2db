//! What ops deploy, checked without a Docker engine: every compose file in `deploy/` is valid
//! Compose and production-shaped, sets only settings the binaries understand, runs only
//! binaries the image holds (and the image holds every binary the workspace builds), and the
//! broker definitions hold exactly the topology the services declare.

#[path = "deploy/compose.rs"]
mod compose;
#[path = "deploy/settings_keys.rs"]
mod settings_keys;

use std::collections::{BTreeMap, BTreeSet};

use orderflow_messages::Exchange;
use orderflow_runtime::Settings;
use orderflow_runtime::topology::{DEAD_LETTER_DELIVERY_LIMIT, Names, queue_arguments};
use serde_json::{Value, json};

use compose::{
    compose_files, environment, example_env, interpolate, orderflow_services, read, repo, services,
    variables,
};

#[test]
fn every_compose_file_follows_the_compose_specification() {
    let schema: Value =
        serde_json::from_str(&read("deploy/compose-spec.json")).expect("compose-spec.json");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    for (name, file) in compose_files() {
        let errors: Vec<String> = validator
            .iter_errors(&file)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{name} is not valid Compose:\n{}",
            errors.join("\n")
        );
    }
}

#[test]
fn the_stack_is_production_shaped() {
    let files = compose_files();
    let (_, main) = files
        .iter()
        .find(|(name, _)| name == "docker-compose.yml")
        .expect("docker-compose.yml");
    for (name, file) in &files {
        for (service, s) in services(file) {
            assert!(
                s.get("container_name").is_none(),
                "{name}: {service} has a container_name"
            );
            let one_shot = s["restart"] == "no";
            if !one_shot && s.get("image").is_some() {
                assert!(
                    s.get("healthcheck").is_some(),
                    "{name}: {service} has no healthcheck"
                );
                assert!(
                    s.get("restart").is_some(),
                    "{name}: {service} has no restart policy"
                );
            }
            for (dependency, how) in s["depends_on"].as_object().into_iter().flatten() {
                assert!(
                    how.get("condition").is_some(),
                    "{name}: {service} → {dependency}"
                );
            }
        }
    }
    for (service, s) in services(main) {
        let in_profile = s.get("profiles").is_some();
        if s.get("ports").is_some() && !in_profile {
            assert_eq!(
                service, "order-intake",
                "only order-intake publishes a port"
            );
        }
    }
    for (service, s, binary) in orderflow_services(main) {
        let env = environment(s);
        if s["restart"] == "no" {
            continue;
        }
        assert_eq!(
            env.get("ORDERFLOW_ENV").map(String::as_str),
            Some("production"),
            "{service}"
        );
        assert_eq!(
            s["healthcheck"]["test"],
            json!(["CMD", binary, "healthcheck"]),
            "{service}"
        );
        assert!(
            s["deploy"].get("replicas").is_some(),
            "{service} has no deploy.replicas"
        );
        if let Some((section, keys)) = settings_keys::own_section(&binary)
            && keys.contains("port")
        {
            let host = format!("ORDERFLOW_{}__HOST", section.to_uppercase());
            assert_eq!(
                env.get(&host).map(String::as_str),
                Some("0.0.0.0"),
                "{service}: {host}"
            );
        }
    }
}

/// Compose recreates a container whenever one it `depends_on` is recreated, and a one-shot job is
/// recreated whenever its image or a password in its environment changes: were the broker or the
/// database to depend on a job, every upgrade and rotation would restart them; were a service to,
/// rotating one password would restart them all. Likewise the database and the broker hold no
/// service's password, and no service may change structure (only `migrate` does).
#[test]
fn upgrades_and_rotations_recreate_only_what_changed() {
    let files = compose_files();
    let one_shot: BTreeSet<String> = files
        .iter()
        .flat_map(|(_, file)| services(file))
        .filter(|(_, s)| s["restart"] == "no")
        .map(|(name, _)| name.clone())
        .collect();
    assert!(
        one_shot.contains("migrate") && one_shot.contains("db-roles"),
        "{one_shot:?}"
    );
    for (name, file) in &files {
        for (service, s) in services(file) {
            if one_shot.contains(service) {
                continue;
            }
            for dependency in s["depends_on"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(d, _)| d)
            {
                assert!(
                    !one_shot.contains(dependency),
                    "{name}: {service} depends on the one-shot job {dependency}"
                );
            }
            if service.starts_with("rabbitmq") || service == "postgres" {
                for variable in environment(s).keys() {
                    assert!(
                        !variable.ends_with("_DB_PASSWORD")
                            && !variable.ends_with("_AMQP_PASSWORD"),
                        "{name}: {service} holds {variable}"
                    );
                }
            }
        }
    }
    let (_, main) = files
        .iter()
        .find(|(name, _)| name == "docker-compose.yml")
        .expect("docker-compose.yml");
    for (service, s, _) in orderflow_services(main) {
        let env = environment(s);
        let Some(url) = env.get("DATABASE_URL") else {
            continue;
        };
        let migrates = env.get("ORDERFLOW_DATABASE__MIGRATE").map(String::as_str);
        if url.contains("orderflow_migrator") {
            assert_eq!(migrates, None, "{service} runs as the migrator");
        } else {
            assert_eq!(
                migrates,
                Some("false"),
                "{service} must not change structure"
            );
        }
    }
}

#[test]
fn every_secret_comes_from_env_and_the_example_names_each_one() {
    let example = example_env();
    let commented = read("deploy/.env.example");
    for (name, _) in compose_files() {
        let text = read(&format!("deploy/{name}"));
        for (variable, default, required) in variables(&text) {
            let secret = ["PASSWORD", "_KEYS", "COOKIE"]
                .iter()
                .any(|s| variable.contains(s));
            assert!(
                !secret || required,
                "{name}: the secret {variable} must be `${{{variable}:?…}}`"
            );
            assert!(
                required || default.is_some(),
                "{name}: {variable} needs a default (:-) or must be required (:?)"
            );
            assert!(
                example.contains_key(&variable) || commented.contains(&format!("# {variable}=")),
                "{name}: .env.example does not mention {variable}"
            );
        }
    }
}

#[test]
fn every_environment_variable_a_compose_file_sets_is_a_setting_the_binary_understands() {
    let example = example_env();
    let users: BTreeSet<String> = definitions()["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| Some(u["name"].as_str()?.replace('-', "_")))
        .collect();
    for (name, file) in compose_files() {
        for (service, s, binary) in orderflow_services(&file) {
            let mut sections: BTreeMap<String, BTreeSet<String>> = settings_keys::common_sections()
                .into_iter()
                .map(|(n, keys)| (n.to_owned(), keys))
                .collect();
            if binary == "orderflow" {
                // The operator's binary runs every service and writes the broker's users.
                for b in [
                    "order-intake",
                    "verification",
                    "fulfilment",
                    "shipping",
                    "billing",
                    "carrier-sim",
                ] {
                    sections.extend(settings_keys::own_section(b));
                    sections.extend(settings_keys::extra_sections(b));
                }
                sections.insert("broker_users".into(), users.clone());
            } else {
                let own = settings_keys::own_section(&binary)
                    .unwrap_or_else(|| panic!("{name}: {service} runs unknown binary `{binary}`"));
                sections.extend([own]);
                sections.extend(settings_keys::extra_sections(&binary));
            }
            let env = environment(s);
            for key in env.keys() {
                if compose::PROCESS_VARIABLES.contains(&key.as_str()) {
                    continue;
                }
                let rest = key
                    .strip_prefix("ORDERFLOW_")
                    .unwrap_or_else(|| panic!("{name}: {service} sets {key}, not a setting"))
                    .to_lowercase();
                let known = match rest.split_once("__") {
                    None => settings_keys::TOP_LEVEL.contains(&rest.as_str()),
                    Some((section, field)) => {
                        let field = field.split("__").next().unwrap_or_default();
                        sections
                            .get(section)
                            .is_some_and(|keys| keys.contains(field))
                    }
                };
                assert!(
                    known,
                    "{name}: {service} ({binary}) sets {key}, which it does not read"
                );
            }
            // And the values load: production mode accepts them, each section parses.
            let values: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| (k.clone(), interpolate(v, &example)))
                .collect();
            let settings = Settings::load_with(None, values)
                .unwrap_or_else(|e| panic!("{name}: {service}: {e:#}"));
            if let Some((section, _)) = settings_keys::own_section(&binary) {
                settings
                    .http(&section)
                    .unwrap_or_else(|e| panic!("{name}: {service}: {e:#}"));
            }
            if binary == "order-intake" {
                // Production refuses the console's development credentials.
                order_intake::console::settings(&settings)
                    .unwrap_or_else(|e| panic!("{name}: {service}: {e:#}"));
            }
            if binary == "carrier-sim" {
                let sim: shipping::carrier_sim::SimSettings =
                    settings.section("carrier_sim").expect("carrier_sim");
                sim.validate().expect("carrier_sim settings");
            }
        }
    }
}

#[test]
fn the_image_holds_exactly_the_binaries_the_workspace_builds() {
    let dockerfile = read("Dockerfile").replace("\\\n", " ");
    let copied: BTreeSet<String> = dockerfile
        .lines()
        .filter(|l| l.trim_start().starts_with("COPY --from=build"))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|word| {
            word.split_once("/target/release/")
                .map(|(_, bin)| bin.to_owned())
        })
        .collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata");
    let built: BTreeSet<String> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.contains(&json!("bin")))
        })
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        copied, built,
        "the Dockerfile copies {copied:?}; the workspace builds {built:?}"
    );
    for (name, file) in compose_files() {
        for (service, _, binary) in orderflow_services(&file) {
            assert!(
                copied.contains(&binary),
                "{name}: {service} runs {binary}, not in the image"
            );
        }
    }
}

fn definitions() -> Value {
    serde_json::from_str(&read("deploy/rabbitmq/definitions.json")).expect("definitions.json")
}

fn amqp_json(value: &lapin::types::AMQPValue) -> Value {
    use lapin::types::AMQPValue;
    match value {
        AMQPValue::LongString(s) => Value::String(s.to_string()),
        AMQPValue::LongUInt(n) => json!(n),
        other => panic!("a queue argument of an unexpected type: {other:?}"),
    }
}

#[test]
fn the_broker_definitions_hold_the_topology_the_services_declare() {
    let names = Names::default();
    let settings = Settings::load_with(None, Vec::<(String, String)>::new()).expect("defaults");
    let specs = [
        order_intake::spec(),
        verification::spec(),
        fulfilment::spec(),
        shipping::spec(),
        billing::spec(),
    ];
    let mut queues = BTreeSet::new();
    let mut bindings = BTreeSet::new();
    for queue in specs.iter().flat_map(|s| &s.queues) {
        let args: serde_json::Map<String, Value> =
            queue_arguments(&names, queue, settings.amqp.delivery_limit)
                .inner()
                .iter()
                .map(|(k, v)| (k.to_string(), amqp_json(v)))
                .collect();
        queues.insert((queue.name.clone(), Value::Object(args).to_string()));
        let dead = queue.dead_letter_name();
        queues.insert((
            dead.clone(),
            json!({"x-queue-type": "quorum", "x-delivery-limit": DEAD_LETTER_DELIVERY_LIMIT})
                .to_string(),
        ));
        bindings.insert((
            Exchange::DeadLetters.name().to_owned(),
            dead,
            queue.name.clone(),
        ));
        for b in &queue.bindings {
            bindings.insert((
                b.exchange.name().to_owned(),
                queue.name.clone(),
                b.key.clone(),
            ));
        }
    }
    let defs = definitions();
    let listed = |key: &str| defs[key].as_array().cloned().unwrap_or_default();
    let defined_queues: BTreeSet<(String, String)> = listed("queues")
        .iter()
        .map(|q| {
            (
                q["name"].as_str().unwrap_or_default().to_owned(),
                q["arguments"].to_string(),
            )
        })
        .collect();
    let defined_bindings: BTreeSet<(String, String, String)> = listed("bindings")
        .iter()
        .map(|b| {
            let field = |f: &str| b[f].as_str().unwrap_or_default().to_owned();
            (field("source"), field("destination"), field("routing_key"))
        })
        .collect();
    let exchanges: BTreeSet<(String, String)> = listed("exchanges")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().into(),
                e["type"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    let expected_exchanges: BTreeSet<(String, String)> = Exchange::ALL
        .iter()
        .map(|e| (e.name().to_owned(), e.kind().to_owned()))
        .collect();
    assert_eq!(exchanges, expected_exchanges);
    assert_eq!(
        defined_queues, queues,
        "queues differ: regenerate deploy/rabbitmq/definitions.json"
    );
    assert_eq!(
        defined_bindings, bindings,
        "bindings differ: regenerate definitions.json"
    );
    assert!(
        listed("users").iter().all(|u| u["name"] != "guest"),
        "no guest user"
    );

    // Each service connects as its own user, to the definitions' vhost.
    let (_, main) = compose_files()
        .into_iter()
        .find(|(name, _)| name == "docker-compose.yml")
        .expect("docker-compose.yml");
    let users: BTreeSet<String> = listed("users")
        .iter()
        .filter_map(|u| u["name"].as_str().map(str::to_owned))
        .collect();
    let vhost = defs["vhosts"][0]["name"]
        .as_str()
        .expect("vhost")
        .to_owned();
    let admin = listed("users")
        .iter()
        .find(|u| {
            u["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("administrator")))
        })
        .and_then(|u| u["name"].as_str().map(str::to_owned))
        .expect("an administrator");
    for (service, s, binary) in orderflow_services(&main) {
        if let Some(url) = environment(s).get("AMQP_URL") {
            let user = url
                .split("://")
                .nth(1)
                .and_then(|r| r.split(':').next())
                .unwrap_or_default();
            // Each stage as its own user; the operator's binary as the administrator.
            let expected = if binary == "orderflow" {
                &admin
            } else {
                &binary
            };
            assert_eq!(user, expected, "{service} connects as {user}");
            assert!(users.contains(user), "{service}: no broker user {user}");
            assert!(
                url.ends_with(&format!("/{vhost}")),
                "{service}: {url} is not on vhost {vhost}"
            );
        }
    }
}

#[test]
fn the_ops_console_is_configured_with_its_own_broker_user_and_verification() {
    let defs = definitions();
    let (_, main) = compose_files()
        .into_iter()
        .find(|(name, _)| name == "docker-compose.yml")
        .expect("docker-compose.yml");
    let services = orderflow_services(&main);
    let (_, intake, _) = services
        .iter()
        .find(|(_, _, binary)| binary == "order-intake")
        .expect("order-intake");
    let env = environment(intake);
    // Every console setting whose default only suits development is set.
    for field in settings_keys::fields_of::<order_intake::console::ConsoleSettings>() {
        if field == "upstream_timeout_ms" {
            continue;
        }
        let key = format!("ORDERFLOW_CONSOLE__{}", field.to_uppercase());
        assert!(env.contains_key(&key), "order-intake does not set {key}");
    }
    // Both the management API and AMQP as the definitions' management-tagged user, with the
    // password the broker-definitions job hashes for it.
    let user = env["ORDERFLOW_CONSOLE__MANAGEMENT_USER"].clone();
    let defined = defs["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == user.as_str()))
        .unwrap_or_else(|| panic!("no broker user {user} in the definitions"));
    assert_eq!(defined["tags"], json!(["management"]), "{user}");
    let amqp = &env["ORDERFLOW_CONSOLE__AMQP_URL"];
    assert!(
        amqp.contains(&format!("://{user}:")) && amqp.ends_with("/orderflow"),
        "{amqp}"
    );
    let password = env["ORDERFLOW_CONSOLE__MANAGEMENT_PASSWORD"].clone();
    assert!(amqp.contains(&format!(":{password}@")), "{amqp}");
    let (_, job, _) = services
        .iter()
        .find(|(_, s, _)| s["command"][1] == "definitions")
        .expect("the broker-definitions job");
    let variable = format!(
        "ORDERFLOW_BROKER_USERS__{}",
        user.replace('-', "_").to_uppercase()
    );
    assert_eq!(
        environment(job).get(&variable),
        Some(&password),
        "the job hashes {user}'s password from the same secret"
    );
    // Verification's address: its service name and the port it listens on.
    let (_, verification, _) = services
        .iter()
        .find(|(_, _, binary)| binary == "verification")
        .expect("verification");
    let port = &environment(verification)["ORDERFLOW_VERIFICATION__PORT"];
    assert_eq!(
        env["ORDERFLOW_CONSOLE__VERIFICATION_URL"],
        format!("http://verification:{port}")
    );
}

/// The cluster file gives every orderflow process of `docker-compose.yml` the three nodes, in a
/// setting the binaries accept, naming only nodes the file runs: each connects to one at random
/// and moves to another when its node is lost.
#[test]
fn in_the_cluster_every_orderflow_process_knows_every_node() {
    let files = compose_files();
    let file = |wanted: &str| {
        files
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, f)| f)
            .unwrap_or_else(|| panic!("{wanted}"))
    };
    let (main, cluster) = (
        file("docker-compose.yml"),
        file("docker-compose.cluster.yml"),
    );
    let nodes: BTreeSet<String> = services(cluster)
        .into_iter()
        .filter(|(name, _)| name.starts_with("rabbitmq"))
        .filter_map(|(_, s)| Some(s["hostname"].as_str()?.to_owned()))
        .collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let in_cluster = services(cluster);
    for (service, s, _) in orderflow_services(main) {
        if !environment(s).contains_key("AMQP_URL") {
            continue;
        }
        let env = in_cluster
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, s)| environment(s))
            .unwrap_or_default();
        let addresses = env.get("ORDERFLOW_AMQP__ADDRESSES").unwrap_or_else(|| {
            panic!("the cluster file gives {service} no ORDERFLOW_AMQP__ADDRESSES")
        });
        let settings = Settings::load_with(
            None,
            [("ORDERFLOW_AMQP__ADDRESSES".to_owned(), addresses.clone())],
        )
        .expect("the binaries accept the addresses");
        let named: BTreeSet<String> =
            orderflow_runtime::cluster::parse_addresses(&settings.amqp.addresses, 5672)
                .expect("addresses")
                .into_iter()
                .map(|node| node.host)
                .collect();
        assert_eq!(named, nodes, "{service}");
    }
}

/// The RabbitMQ and PostgreSQL images declare a data volume. A container that leaves it
/// unmounted gets an anonymous volume, and when Compose recreates the container (a password or
/// image change) the new one inherits it by name, so `down -v` no longer removes it: each
/// rotation would leak a volume. Every such service mounts something there.
#[test]
fn no_container_gets_an_anonymous_data_volume() {
    for (name, file) in compose_files() {
        for (service, s) in services(&file) {
            let image = s["image"].as_str().unwrap_or_default();
            let data = if image.starts_with("postgres:") {
                "/var/lib/postgresql/data"
            } else if image.starts_with("rabbitmq:") {
                "/var/lib/rabbitmq"
            } else {
                continue;
            };
            let volumes = s["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    v.as_str()
                        .and_then(|v| v.split(':').nth(1))
                        .or_else(|| v["target"].as_str())
                });
            let tmpfs = s["tmpfs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str);
            assert!(
                volumes.chain(tmpfs).any(|target| target == data),
                "{name}: {service} leaves the image's {data} to an anonymous volume"
            );
        }
    }
}
