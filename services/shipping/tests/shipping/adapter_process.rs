//! The simulated carrier as its own process — the `carrier-sim` binary, configured only through
//! the environment — proves that an out-of-process adapter speaking the public protocol works.

use std::process::Stdio;

use orderflow_messages::Exchange;
use orderflow_messages::order::{Delivered, Shipped};
use orderflow_runtime::testing::TestEnv;
use tokio::process::{Child, Command};

use crate::support::{Running, SHOP_KEY, WAIT, packed};

/// Kills the adapter when the test ends, however it ends.
struct Adapter(Child);

impl Drop for Adapter {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn spawn_carrier_sim(env: &TestEnv) -> Adapter {
    let child = Command::new(env!("CARGO_BIN_EXE_carrier-sim"))
        .env("AMQP_URL", env.settings.amqp.url.expose())
        .env("ORDERFLOW_AMQP__PREFIX", &env.prefix)
        .env("ORDERFLOW_CARRIER_SIM__SEED", "20261127")
        .env("ORDERFLOW_CARRIER_SIM__TRANSIT_DELAY_MS", "20")
        .env("ORDERFLOW_LOG__LEVEL", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the carrier-sim binary starts");
    Adapter(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_adapter_in_its_own_process_ships_and_delivers_an_order() {
    let running = Running::shipping(TestEnv::new()).await;
    let mut adapter = spawn_carrier_sim(&running.env);
    let mut probe = running
        .env
        .probe(&[
            (Exchange::Events, "order.shipped"),
            (Exchange::Events, "order.delivered"),
        ])
        .await;
    let packed = packed("express", &[("WH-A", &[1_000]), ("WH-B", &[2_000])]);
    running
        .publisher
        .publish(&packed, None)
        .await
        .expect("publish");

    let shipped = probe.next_of::<Shipped>(WAIT).await;
    assert_eq!(shipped.order_id, packed.order_id);
    assert_eq!(shipped.payload.shipments.len(), 2);
    let delivered = probe.next_of::<Delivered>(WAIT).await;
    assert_eq!(delivered.order_id, packed.order_id);

    let (_, body) = running
        .get(
            &format!("/v1/shipments?order_id={}", packed.order_id),
            SHOP_KEY,
        )
        .await;
    for shipment in body["shipments"].as_array().cloned().unwrap_or_default() {
        assert_eq!(shipment["status"], "delivered");
        assert_eq!(shipment["tracking"].as_array().map(Vec::len), Some(3));
    }
    assert!(
        adapter.0.try_wait().expect("status").is_none(),
        "the adapter is still running"
    );
    adapter.0.kill().await.expect("kill the adapter");
    running.stop().await;
}
