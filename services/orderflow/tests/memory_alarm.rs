//! Backpressure: with the broker's memory alarm raised, RabbitMQ blocks every publishing
//! connection. Intake must keep its promise all the same — each `POST /v1/orders` answers 201
//! (the order and its `order.placed` are committed to the outbox) or 503, never accepts and
//! forgets — and when the alarm clears the backlog drains and every accepted order completes.
//!
//! The alarm is broker-wide: it blocks every publisher on the broker, this test's neighbours
//! too. So this binary holds exactly this one test (cargo runs test binaries one after another),
//! the alarm lasts a few seconds, and the previous watermark (read from `rabbitmqctl
//! environment`) is restored by a guard even if the test panics. If the process is killed in
//! the window, restore it by hand: `rabbitmqctl set_vm_memory_high_watermark 0.4`.

mod support;

#[path = "support/replicas.rs"]
mod replicas;
#[path = "support/shop.rs"]
mod shop;

use std::process::Command;
use std::time::{Duration, Instant};

use replicas::System;
use support::assert_check_passes;
use uuid::Uuid;

/// How long the alarm stays raised.
const ALARM: Duration = Duration::from_secs(6);
/// How many orders are placed while it is (the rest of the window only waits).
const ORDERS_IN_ALARM: usize = 200;

/// The broker's memory watermark as it was, put back on drop.
struct RaisedAlarm {
    previous: Vec<String>,
}

impl RaisedAlarm {
    /// Reads the current watermark, then sets it to one byte: the alarm goes off at once.
    fn raise() -> RaisedAlarm {
        let previous = current_watermark();
        let alarm = RaisedAlarm { previous };
        rabbitmqctl(&["set_vm_memory_high_watermark", "absolute", "1"]);
        alarm
    }
}

impl Drop for RaisedAlarm {
    fn drop(&mut self) {
        let mut args = vec!["set_vm_memory_high_watermark"];
        args.extend(self.previous.iter().map(String::as_str));
        let restored = Command::new("rabbitmqctl").args(&args).output();
        if !restored.is_ok_and(|o| o.status.success()) {
            eprintln!(
                "could not restore the memory watermark: run `rabbitmqctl {}`",
                args.join(" ")
            );
        }
    }
}

fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The arguments of `set_vm_memory_high_watermark` that set it as it is now: `0.4` from
/// `{vm_memory_high_watermark,0.4}`, `absolute 1073741824` from `{…,{absolute,1073741824}}`.
fn current_watermark() -> Vec<String> {
    let env = rabbitmqctl(&["environment"]);
    let key = "{vm_memory_high_watermark,";
    let start = env
        .find(key)
        .expect("vm_memory_high_watermark in the environment")
        + key.len();
    let rest = &env[start..];
    let value: String = if rest.starts_with('{') {
        rest[..rest.find('}').expect("a closing brace") + 1].to_owned()
    } else {
        rest[..rest.find('}').expect("a closing brace")].to_owned()
    };
    let value = value.trim();
    if let Some(inner) = value.strip_prefix("{absolute,") {
        let amount = inner.trim_end_matches('}').trim().trim_matches('"');
        vec!["absolute".into(), amount.to_owned()]
    } else {
        let fraction: f64 = value.parse().expect("a fraction");
        assert!(fraction > 0.0 && fraction < 1.0, "watermark {value}");
        vec![value.to_owned()]
    }
}

/// Whether the broker reports a memory alarm now.
fn alarm_in_effect() -> bool {
    let out = Command::new("rabbitmq-diagnostics")
        .args(["-q", "alarms"])
        .output()
        .expect("rabbitmq-diagnostics");
    String::from_utf8_lossy(&out.stdout)
        .to_lowercase()
        .contains("memory")
}

async fn outbox_backlog(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(db)
        .await
        .expect("outbox count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_accepts_into_its_outbox_or_refuses_while_the_broker_blocks_and_the_backlog_drains()
{
    let System {
        env,
        logs,
        replicas: mut all,
        ports,
        client,
    } = System::start("alarm", 1, None).await;
    let intake = format!("http://127.0.0.1:{}", ports["order-intake"]);
    let run = format!("alarm-{}", Uuid::now_v7().simple());
    // The system works before the alarm.
    let warm = shop::place_all(&client, &intake, &run, 0..10, 4).await;
    let db = env.pool("order_intake").await;
    shop::assert_final_as_intended(&db, &warm, Duration::from_secs(60), &logs).await;

    let alarm = RaisedAlarm::raise();
    let raised = Instant::now();
    while !alarm_in_effect() {
        assert!(
            raised.elapsed() < Duration::from_secs(10),
            "the memory alarm did not go off"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Orders placed while the broker blocks publishers: each answer is 201 or 503.
    let mut accepted = Vec::new();
    let mut refused = 0;
    let mut broken = Vec::new();
    let mut peak_backlog = 0;
    let mut i = 10;
    while raised.elapsed() < ALARM {
        if accepted.len() + refused >= ORDERS_IN_ALARM {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let (order, rejected) = shop::order(&run, i);
        let answer = client
            .post(format!("{intake}/v1/orders"))
            .bearer_auth("dev-shop-key")
            .header("Idempotency-Key", format!("{run}-{i}"))
            .json(&order)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().as_u16() == 201 => {
                let body: serde_json::Value = r.json().await.expect("a body");
                let id: Uuid = body["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("an id");
                accepted.push((id, rejected));
            }
            Ok(r) if r.status().as_u16() == 503 => refused += 1,
            Ok(r) => broken.push(format!("order {i}: {}", r.status())),
            Err(e) => broken.push(format!("order {i}: {e}")),
        }
        peak_backlog = peak_backlog.max(outbox_backlog(&db).await);
        i += 1;
    }
    let still_raised = alarm_in_effect();
    drop(alarm);
    let cleared = Instant::now();
    while alarm_in_effect() {
        assert!(
            cleared.elapsed() < Duration::from_secs(10),
            "the memory alarm did not clear"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(still_raised, "the alarm was in effect the whole window");
    assert!(broken.is_empty(), "answers neither 201 nor 503: {broken:?}");
    assert!(
        !accepted.is_empty(),
        "intake accepted no order during the alarm"
    );
    assert!(
        peak_backlog > 0,
        "while the broker blocked, intake's outbox held the accepted orders' messages"
    );

    // Every accepted order completes once the broker takes messages again.
    shop::assert_final_as_intended(&db, &accepted, Duration::from_secs(120), &logs).await;
    let drained = cleared.elapsed();
    assert_check_passes(&env, Duration::from_secs(20)).await;
    for r in &mut all {
        assert!(r.exited().is_none(), "{} exited:\n{}", r.stage(), r.log());
        r.kill().await;
    }
    println!(
        "memory alarm figures: alarm={}s accepted={} (201) refused={refused} (503) other=0 \
         peak_outbox_backlog={peak_backlog} all_final_after={:.1}s result=every accepted order \
         completed, check passed",
        ALARM.as_secs(),
        accepted.len(),
        drained.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&logs);
}
