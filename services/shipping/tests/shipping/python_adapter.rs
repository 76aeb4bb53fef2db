//! The carrier guide's promise, checked: an adapter in another language, written from
//! `shared/messages/CARRIERS.md` with a stock AMQP client (Python and pika), ships an order.
//! Ignored by default because it needs `python3` with `pika`; run it with
//! `cargo test -p shipping --test shipping -- --ignored python`. With
//! `ORDERFLOW_TEST_RABBITMQCTL=1` (and `rabbitmqctl` on the PATH, talking to the test broker) the
//! adapter connects as a broker user holding exactly the guide's permissions, and the test checks
//! that this user cannot report for another carrier.

use std::process::Stdio;
use std::time::Duration;

use orderflow_messages::Exchange;
use orderflow_messages::order::{Delivered, Shipped};
use orderflow_runtime::testing::TestEnv;
use reqwest::Method;
use serde_json::json;
use tokio::process::Command;

use crate::support::{ADMIN_KEY, Running, SHOP_KEY, WAIT, configure, packed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with pika"]
async fn a_python_adapter_written_from_the_guide_ships_and_delivers_an_order() {
    let mut env = TestEnv::new();
    configure(
        &mut env,
        "shipping.rules",
        json!([{"shipping_method": "express", "carrier": "acme", "service_level": "next_day"}]),
    );
    let running = Running::shipping(env).await;
    let acme = json!({"name": "ACME Parcel", "service_levels": ["next_day"],
        "tracking_url_template": "https://acme.example/track/{tracking_number}"});
    let (status, _) = running
        .send(
            Method::PUT,
            "/v1/carriers/acme",
            &[("Authorization", ADMIN_KEY)],
            Some(serde_json::to_vec(&acme).expect("json")),
        )
        .await;
    assert_eq!(status, 201);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/adapters/python/carrier_adapter.py"
    );
    let restricted = match std::env::var("ORDERFLOW_TEST_RABBITMQCTL") {
        Ok(_) => Some(CarrierUser::create(&running.env).await),
        Err(_) => None,
    };
    let adapter_url = restricted.as_ref().map_or_else(
        || running.env.settings.amqp.url.expose().to_owned(),
        |user| user.url.clone(),
    );
    let mut adapter = Command::new("python3")
        .arg(script)
        .env("AMQP_URL", &adapter_url)
        .env("ORDERFLOW_PREFIX", &running.env.prefix)
        .env("CARRIER_CODE", "acme")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts");
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Events, "order.shipped"),
            (Exchange::Events, "order.delivered"),
        ])
        .await;
    let packed = packed("express", &[("WH-A", &[1_000])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");

    let shipped = probe.next_of::<Shipped>(WAIT).await;
    assert_eq!(shipped.payload.shipments[0].carrier, "acme");
    assert!(
        shipped.payload.shipments[0]
            .tracking_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://acme.example/track/ACME"))
    );
    let delivered = probe.next_of::<Delivered>(WAIT).await;
    assert_eq!(delivered.order_id, packed.order_id);
    let (_, body) = running
        .get(
            &format!("/v1/shipments?order_id={}", packed.order_id),
            SHOP_KEY,
        )
        .await;
    assert_eq!(body["shipments"][0]["status"], "delivered");
    assert!(
        adapter.try_wait().expect("status").is_none(),
        "the adapter is still running"
    );
    adapter.kill().await.expect("kill the adapter");
    if let Some(user) = restricted {
        user.cannot_report_for_another_carrier(&running.env).await;
        user.delete().await;
    }
    running.stop().await;
}

/// A broker user with exactly the permissions `CARRIERS.md` §8 gives carrier `acme`.
struct CarrierUser {
    name: String,
    url: String,
}

async fn rabbitmqctl(args: &[&str]) {
    let status = orderflow_runtime::testing::rabbitmqctl()
        .args(args)
        .stdout(Stdio::null())
        .status()
        .await
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {args:?}");
}

impl CarrierUser {
    async fn create(env: &TestEnv) -> CarrierUser {
        let name = format!("carrier-acme-{}", env.prefix.trim_end_matches('.'));
        let password = uuid::Uuid::new_v4().simple().to_string();
        let prefix = env.prefix.replace('.', "\\.");
        rabbitmqctl(&["add_user", &name, &password]).await;
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            "/",
            &name,
            "^$",
            &format!("^{prefix}orderflow\\.carrier-events$"),
            &format!("^{prefix}carrier\\.acme$"),
        ])
        .await;
        rabbitmqctl(&[
            "set_topic_permissions",
            "-p",
            "/",
            &name,
            &format!("{}orderflow.carrier-events", env.prefix),
            "^acme\\.",
            "^$",
        ])
        .await;
        CarrierUser {
            url: format!(
                "amqp://{name}:{password}@{}/%2f",
                orderflow_runtime::testing::broker_address(&env.settings)
            ),
            name,
        }
    }

    /// Publishing under carrier `sim`'s key is refused by the broker.
    async fn cannot_report_for_another_carrier(&self, env: &TestEnv) {
        let connection =
            lapin::Connection::connect(&self.url, lapin::ConnectionProperties::default())
                .await
                .expect("the carrier user connects");
        let channel = connection.create_channel().await.expect("channel");
        let refused = async {
            channel
                .basic_publish(
                    env.names()
                        .exchange(Exchange::CarrierEvents)
                        .as_str()
                        .into(),
                    "sim.shipment.tracking_updated".into(),
                    lapin::options::BasicPublishOptions::default(),
                    b"{}",
                    lapin::BasicProperties::default(),
                )
                .await?;
            // The refusal closes the channel; the next operation reports it.
            tokio::time::sleep(Duration::from_millis(200)).await;
            channel.basic_qos(1, Default::default()).await
        }
        .await;
        assert!(refused.is_err(), "publishing as `sim` must be refused");
        let _ = connection.close(200, "done".into()).await;
    }

    async fn delete(self) {
        rabbitmqctl(&["delete_user", &self.name]).await;
    }
}
