use std::path::Path;

use super::*;

fn default_settings() -> Settings {
    Settings::load_with(None, Vec::<(String, String)>::new()).expect("default settings")
}

fn permission<'d>(definitions: &'d Value, user: &str) -> &'d Value {
    definitions["permissions"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["user"] == user))
        .unwrap_or_else(|| panic!("no permissions for {user}"))
}

fn topic_permission<'d>(definitions: &'d Value, user: &str, exchange: &str) -> &'d Value {
    definitions["topic_permissions"]
        .as_array()
        .and_then(|p| {
            p.iter()
                .find(|p| p["user"] == user && p["exchange"] == exchange)
        })
        .unwrap_or_else(|| panic!("no topic permissions for {user} on {exchange}"))
}

#[test]
fn the_committed_definitions_are_the_ones_the_topology_generates() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rabbitmq/definitions.json");
    let expected =
        serde_json::to_string_pretty(&generate(&default_settings())).expect("json") + "\n";
    if std::env::var_os("UPDATE_DEFINITIONS").is_some() {
        std::fs::write(&file, &expected).expect("write definitions.json");
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == expected,
        "{} is stale: run `UPDATE_DEFINITIONS=1 cargo test -p orderflow definitions` and commit it",
        file.display()
    );
}

#[test]
fn every_queue_has_its_dead_letter_queue_and_there_is_no_guest() {
    let definitions = generate(&default_settings());
    let queues: Vec<&str> = definitions["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    for queue in queues.iter().filter(|q| !q.ends_with(".dead")) {
        assert!(
            queues.contains(&format!("{queue}.dead").as_str()),
            "{queue}"
        );
    }
    assert!(queues.contains(&"carrier.sim"));
    let users: Vec<&str> = definitions["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(
        users,
        [
            "order-intake",
            "verification",
            "fulfilment",
            "shipping",
            "billing",
            "carrier-sim",
            ADMIN_USER,
            CONSOLE_USER
        ]
    );
    assert!(
        definitions["users"]
            .as_array()
            .expect("users")
            .iter()
            .all(|u| u["password_hash"] == ""),
        "the committed file must hold no password hashes"
    );
}

#[test]
fn a_carrier_reads_only_its_queue_and_writes_only_its_own_replies() {
    let definitions = generate(&default_settings());
    let sim = permission(&definitions, "carrier-sim");
    assert_eq!(
        sim["read"],
        r"^(carrier\.sim|orderflow\.carriers|orderflow\.dlx)$"
    );
    assert_eq!(
        sim["write"],
        r"^(carrier\.sim|carrier\.sim\.dead|orderflow\.carrier-events|orderflow\.dlx)$"
    );
    assert_eq!(
        topic_permission(&definitions, "carrier-sim", "orderflow.carrier-events")["write"],
        r"^(sim\.shipment\.label_created|sim\.shipment\.tracking_updated)$"
    );
    assert_eq!(
        topic_permission(&definitions, "carrier-sim", "orderflow.events")["write"],
        "^$"
    );
}

#[test]
fn a_service_reads_only_its_own_queues_and_binds_only_what_it_consumes() {
    let definitions = generate(&default_settings());
    let fulfilment = permission(&definitions, "fulfilment");
    let read = fulfilment["read"].as_str().expect("read");
    assert!(read.contains(r"fulfilment\.orders"), "{read}");
    assert!(!read.contains("verification"), "{read}");
    assert!(!read.contains("carrier"), "{read}");
    let write = fulfilment["write"].as_str().expect("write");
    assert!(!write.contains("carrier"), "{write}");
    let events = topic_permission(&definitions, "fulfilment", "orderflow.events");
    assert!(
        events["read"]
            .as_str()
            .expect("read")
            .contains(r"order\.verified")
    );
    assert!(!events["read"].as_str().expect("read").contains("placed"));
    // Only shipping sends carriers their commands, and it declares the queue of any carrier
    // registered at runtime.
    let shipping = permission(&definitions, "shipping");
    assert!(
        shipping["write"]
            .as_str()
            .expect("write")
            .contains(r"orderflow\.carriers")
    );
    assert!(
        shipping["configure"]
            .as_str()
            .expect("configure")
            .contains(r"carrier\.[a-z0-9_-]+|carrier\.[a-z0-9_-]+\.dead"),
        "{shipping}"
    );
}

#[test]
fn the_console_reads_only_dead_letter_queues_and_publishes_only_replays() {
    let definitions = generate(&default_settings());
    let console = permission(&definitions, CONSOLE_USER);
    assert_eq!(console["configure"], "^$", "it declares nothing");
    assert_eq!(
        console["write"],
        r"^(orderflow\.carrier-events|orderflow\.carriers|orderflow\.events)$"
    );
    let read = console["read"].as_str().expect("read");
    assert!(read.contains(r"fulfilment\.orders\.dead"), "{read}");
    assert!(read.contains(r"carrier\.[a-z0-9_-]+\.dead"), "{read}");
    let alternatives = read.trim_start_matches("^(").trim_end_matches(")$");
    assert!(
        alternatives.split('|').all(|q| q.ends_with(r"\.dead")),
        "only dead-letter queues: {read}"
    );
    let user = definitions["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == CONSOLE_USER))
        .expect("the console's user");
    assert_eq!(user["tags"], json!(["management"]));
    let events = topic_permission(&definitions, CONSOLE_USER, "orderflow.events");
    assert_eq!(events["write"], domain_events());
    assert_eq!(events["read"], "^$", "it binds nothing");
    assert_eq!(
        topic_permission(&definitions, CONSOLE_USER, "orderflow.carrier-events")["write"],
        r"^[a-z0-9_-]+\.(shipment\.label_created|shipment\.tracking_updated)$"
    );
    assert_eq!(
        topic_permission(&definitions, CONSOLE_USER, "orderflow.dlx")["write"],
        "^$"
    );
}

#[test]
fn users_from_the_environment_get_rabbitmq_password_hashes() {
    let settings = Settings::load_with(
        None,
        [
            "ORDER_INTAKE",
            "VERIFICATION",
            "FULFILMENT",
            "SHIPPING",
            "BILLING",
            "CARRIER_SIM",
            "ORDERFLOW_ADMIN",
            "ORDERFLOW_CONSOLE",
        ]
        .map(|u| {
            (
                format!("ORDERFLOW_BROKER_USERS__{u}"),
                format!("{}-0123456789abcdef", u.to_lowercase()),
            )
        }),
    )
    .expect("settings");
    let mut definitions = generate(&settings);
    let passwords: BTreeMap<String, Secret> =
        settings.section(PASSWORDS_SECTION).expect("passwords");
    set_passwords(&mut definitions, &passwords).expect("passwords set");
    let hash = definitions["users"][0]["password_hash"]
        .as_str()
        .expect("hash");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(hash)
        .expect("base64");
    let salt: [u8; 4] = bytes[..4].try_into().expect("salt");
    assert_eq!(hash, hash_with_salt(salt, "order_intake-0123456789abcdef"));
}

#[test]
fn a_missing_or_unsafe_password_names_the_variable() {
    let mut definitions = generate(&default_settings());
    let none = set_passwords(&mut definitions, &BTreeMap::new()).expect_err("missing");
    assert!(
        none.to_string()
            .contains("ORDERFLOW_BROKER_USERS__CARRIER_SIM"),
        "{none}"
    );
    let mut passwords: BTreeMap<String, Secret> = BTreeMap::new();
    passwords.insert("order_intake".into(), Secret::new("p@ss:word/with-bits"));
    let unsafe_chars = set_passwords(&mut definitions, &passwords).expect_err("unsafe");
    assert!(
        unsafe_chars
            .to_string()
            .contains("ORDERFLOW_BROKER_USERS__ORDER_INTAKE"),
        "{unsafe_chars}"
    );
}
