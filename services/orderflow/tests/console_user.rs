//! The ops console's broker user as `orderflow definitions --users-from-env` writes it, on the
//! real broker: imported into a vhost of its own, the console configured with it (management API
//! and dead letters) lists the vhost's queues and replays a dead letter, while the user cannot
//! read a work queue, publish a made-up routing key, forge a dead letter, declare a queue, or see
//! anything of the broker beyond its vhost.

#[path = "support/dead_letters.rs"]
mod dead_letters;

use std::collections::BTreeSet;
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use orderflow_runtime::Settings;
use orderflow_runtime::testing::eventually;
use serde_json::{Value, json};
use uuid::Uuid;

use dead_letters::{depth, headers, publish};

/// The broker under test, as every broker suite finds it (`AMQP_URL`, `RABBITMQ_MANAGEMENT_URL`).
const MANAGEMENT: FromEnv = FromEnv(orderflow_runtime::testing::management_url);
const BROKER: FromEnv = FromEnv(|| {
    let base = Settings::load_with(None, std::env::vars()).expect("test settings");
    orderflow_runtime::testing::broker_address(&base)
});
/// The broker's own development administrator sets the scene (and cleans up).
const ADMIN: (&str, &str) = ("guest", "guest");
/// The generated name; the test imports the user under a name of its own.
const CONSOLE_USER: &str = "orderflow-console";

/// A test setting read from the environment each time it is formatted.
struct FromEnv(fn() -> String);

impl std::fmt::Display for FromEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&(self.0)())
    }
}

/// A vhost and a console user that exist only for this test; removed when dropped.
struct Imported {
    vhost: String,
    user: String,
    password: String,
}

impl Drop for Imported {
    fn drop(&mut self) {
        let (vhost, user) = (self.vhost.clone(), self.user.clone());
        // Drop cannot await: clean up on a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let client = reqwest::Client::new();
                for path in [format!("vhosts/{vhost}"), format!("users/{user}")] {
                    let _ = client
                        .delete(format!("{MANAGEMENT}/api/{path}"))
                        .basic_auth(ADMIN.0, Some(ADMIN.1))
                        .send()
                        .await;
                }
            });
        })
        .join();
    }
}

/// `orderflow definitions --users-from-env`, every user with a password of its own.
fn generated(console_password: &str) -> Value {
    let users = [
        "ORDER_INTAKE",
        "VERIFICATION",
        "FULFILMENT",
        "SHIPPING",
        "BILLING",
        "CARRIER_SIM",
        "ORDERFLOW_ADMIN",
    ];
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["definitions", "--users-from-env"])
        .envs(users.map(|u| {
            (
                format!("ORDERFLOW_BROKER_USERS__{u}"),
                Uuid::new_v4().simple().to_string(),
            )
        }))
        .env(
            "ORDERFLOW_BROKER_USERS__ORDERFLOW_CONSOLE",
            console_password,
        )
        .env("RUST_LOG", "warn")
        .output()
        .expect("run orderflow definitions");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("definitions on stdout")
}

/// Imports the generated topology and the console's user (only it: users are broker-wide) into
/// a fresh vhost.
async fn import(http: &reqwest::Client) -> Imported {
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let imported = Imported {
        vhost: format!("orderflow-console-test-{tag}"),
        user: format!("{CONSOLE_USER}-test-{tag}"),
        password: Uuid::new_v4().simple().to_string(),
    };
    let definitions = generated(&imported.password);
    let in_vhost = |items: &Value, user: Option<&str>| -> Vec<Value> {
        items
            .as_array()
            .expect("a list")
            .iter()
            .filter(|item| user.is_none_or(|u| item["user"] == u))
            .map(|item| {
                let mut item = item.clone();
                item["vhost"] = json!(imported.vhost);
                if user.is_some() {
                    item["user"] = json!(imported.user);
                }
                item
            })
            .collect()
    };
    let mut console = definitions["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == CONSOLE_USER))
        .expect("the console's user is generated")
        .clone();
    assert_ne!(console["password_hash"], "", "a password hash from the env");
    console["name"] = json!(imported.user);
    let mut permissions = in_vhost(&definitions["permissions"], Some(CONSOLE_USER));
    permissions.push(json!({"user": ADMIN.0, "vhost": imported.vhost,
        "configure": ".*", "write": ".*", "read": ".*"}));
    let import = json!({
        "users": [console],
        "vhosts": [{"name": imported.vhost}],
        "permissions": permissions,
        "topic_permissions": in_vhost(&definitions["topic_permissions"], Some(CONSOLE_USER)),
        "exchanges": in_vhost(&definitions["exchanges"], None),
        "queues": in_vhost(&definitions["queues"], None),
        "bindings": in_vhost(&definitions["bindings"], None),
    });
    let answer = http
        .post(format!("{MANAGEMENT}/api/definitions"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&import)
        .send()
        .await
        .expect("the management API answers (rabbitmq_management enabled)");
    assert!(
        answer.status().is_success(),
        "import: {} {}",
        answer.status(),
        answer.text().await.unwrap_or_default()
    );
    imported
}

async fn connect(user: &str, password: &str, vhost: &str) -> Connection {
    Connection::connect(
        &format!("amqp://{user}:{password}@{BROKER}/{vhost}"),
        ConnectionProperties::default(),
    )
    .await
    .expect("connect")
}

/// The broker refuses `publish` by closing the channel (`ACCESS_REFUSED`).
async fn publish_is_refused(connection: &Connection, exchange: &str, key: &str) {
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let published = async {
        channel
            .basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions::default(),
                b"{}",
                BasicProperties::default(),
            )
            .await?
            .await
    }
    .await;
    assert!(
        !matches!(published, Ok(lapin::Confirmation::Ack(_))),
        "{exchange} / {key} was accepted"
    );
    eventually(
        &format!("the broker refuses a publish to {exchange} with key {key}"),
        Duration::from_secs(5),
        || async { !channel.status().connected() },
    )
    .await;
}

fn refused<T: std::fmt::Debug>(what: &str, result: Result<T, lapin::Error>) {
    let error = result.expect_err(what);
    assert!(
        format!("{error:?}").contains("ACCESS_REFUSED"),
        "{what}: {error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_user_lists_queues_and_replays_dead_letters_and_nothing_more() {
    let http = reqwest::Client::new();
    let imported = import(&http).await;
    let (vhost, user, password) = (&imported.vhost, &imported.user, &imported.password);

    // A dead letter of fulfilment's queue, as its consumer would have written it.
    let admin = connect(ADMIN.0, ADMIN.1, vhost).await;
    let channel = admin.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let letter = Uuid::now_v7();
    let headers = headers(&[
        ("x-orderflow-reason", "the database was away"),
        ("x-orderflow-queue", "fulfilment.orders"),
        ("x-orderflow-routing-key", "order.verified"),
        ("x-orderflow-exchange", "orderflow.events"),
    ]);
    publish(
        &channel,
        "orderflow.dlx",
        "fulfilment.orders",
        letter,
        headers,
    )
    .await;
    assert_eq!(depth(&channel, "fulfilment.orders.dead").await, 1);

    // The console, configured as the compose file configures it, with that one user.
    let amqp_url = format!("amqp://{user}:{password}@{BROKER}/{vhost}");
    let management = MANAGEMENT.to_string();
    let settings = Settings::load_with(
        None,
        [
            ("ORDERFLOW_CONSOLE__AMQP_URL", amqp_url.as_str()),
            ("ORDERFLOW_CONSOLE__MANAGEMENT_URL", management.as_str()),
            ("ORDERFLOW_CONSOLE__MANAGEMENT_USER", user.as_str()),
            ("ORDERFLOW_CONSOLE__MANAGEMENT_PASSWORD", password.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("settings");
    // The queue and dead-letter endpoints never touch the database.
    let pool = sqlx::PgPool::connect_lazy("postgres://postgres@127.0.0.1:5432/postgres")
        .expect("a lazy pool");
    let router = order_intake::console::router(pool, &settings).expect("the console");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth("dev-staff-key")
    };

    let expected: BTreeSet<String> = generated(&Uuid::new_v4().simple().to_string())["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["name"].as_str().map(str::to_owned))
        .collect();
    let answer = call(reqwest::Method::GET, "/v1/console/queues")
        .send()
        .await
        .expect("queues");
    assert_eq!(answer.status(), 200);
    let queues: Value = answer.json().await.expect("json");
    let listed: BTreeSet<String> = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        listed, expected,
        "every queue of the vhost, work queues too"
    );

    let answer = call(reqwest::Method::GET, "/v1/console/dead-letters")
        .send()
        .await
        .expect("dead letters");
    assert_eq!(answer.status(), 200);
    let letters: Value = answer.json().await.expect("json");
    let listed = letters["letters"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["id"] == letter.to_string()))
        .unwrap_or_else(|| panic!("the letter is listed: {letters}"));
    assert_eq!(listed["reason"], "the database was away");
    assert_eq!(listed["dead_queue"], "fulfilment.orders.dead");

    let answer = call(
        reqwest::Method::POST,
        &format!("/v1/console/dead-letters/{letter}/replay"),
    )
    .send()
    .await
    .expect("replay");
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    eventually(
        "the replayed letter is back in fulfilment.orders and gone from its dead-letter queue",
        Duration::from_secs(10),
        || async {
            depth(&channel, "fulfilment.orders").await == 1
                && depth(&channel, "fulfilment.orders.dead").await == 0
        },
    )
    .await;
    let back = channel
        .basic_get("fulfilment.orders".into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get")
        .expect("the replayed message");
    assert_eq!(
        back.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string()),
        Some(letter.to_string())
    );
    server.abort();

    // And nothing more, over AMQP…
    let console = connect(user, password, vhost).await;
    let probe = console.create_channel().await.expect("channel");
    refused(
        "reading a work queue",
        probe
            .basic_get(
                "fulfilment.orders".into(),
                BasicGetOptions { no_ack: false },
            )
            .await,
    );
    let probe = console.create_channel().await.expect("channel");
    refused(
        "declaring a queue",
        probe
            .queue_declare(
                "console-made".into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await,
    );
    publish_is_refused(&console, "orderflow.events", "made.up.key").await;
    publish_is_refused(&console, "orderflow.dlx", "fulfilment.orders").await;
    publish_is_refused(&console, "", "fulfilment.orders").await;

    // …and over the management API: no users, no other vhost.
    let users = http
        .get(format!("{MANAGEMENT}/api/users"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("users");
    assert_eq!(users.status(), 401, "the user list is for administrators");
    let vhosts: Value = http
        .get(format!("{MANAGEMENT}/api/vhosts"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("vhosts")
        .json()
        .await
        .expect("json");
    assert_eq!(vhosts.as_array().map(Vec::len), Some(1), "{vhosts}");
    assert_eq!(vhosts[0]["name"], json!(vhost));
    let _ = admin.close(200, "done".into()).await;
    let _ = console.close(200, "done".into()).await;
}
