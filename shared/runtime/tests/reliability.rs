//! The runtime's promises, exercised through a minimal service on the real broker and database:
//! a message written to the outbox survives a crash before it was published; a duplicate
//! delivery changes nothing; a poison message is dead-lettered with its reason while its
//! neighbours are handled; given several broker nodes, a service whose node is lost carries on
//! through another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lapin::options::BasicGetOptions;
use lapin::types::AMQPValue;
use orderflow_messages::order::Cancelled;
use orderflow_messages::{Envelope, Exchange};
use orderflow_runtime::testing::{TestEnv, eventually};
use orderflow_runtime::topology::QueueSpec;
use orderflow_runtime::{CancellationToken, HandleError, Handler, Incoming, Service, ServiceSpec};
use sqlx::PgConnection;
use sqlx::migrate::Migrator;
use uuid::Uuid;

static MIGRATOR: Migrator = sqlx::migrate!("./tests/migrations");
const QUEUE: &str = "recorder.orders";
const WAIT: Duration = Duration::from_secs(20);

/// Records every `order.cancelled` it handles; a reason of `poison` is a permanent failure.
struct Recorder;

impl Handler for Recorder {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming) -> Result<(), HandleError> {
        let cancelled = msg.decode::<Cancelled>()?;
        if cancelled.reason == "poison" {
            return Err(HandleError::Permanent("the reason is poison".into()));
        }
        sqlx::query("INSERT INTO handled (message_id, reason) VALUES ($1, $2)")
            .bind(msg.envelope.message_id)
            .bind(&cancelled.reason)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "recorder",
        schema: "recorder",
        migrator: &MIGRATOR,
        queues: vec![QueueSpec::new(QUEUE).bind::<Cancelled>()],
    }
}

fn cancelled(reason: &str) -> Envelope<Cancelled> {
    Envelope::new(
        "test",
        Uuid::now_v7(),
        Cancelled {
            reason: reason.into(),
        },
    )
}

/// The recorder service, running until [`Running::stop`].
struct Running {
    pool: sqlx::PgPool,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Starts the recorder on `settings`; with `consume`, it handles its queue (else only its
    /// outbox relay runs).
    async fn start(settings: &orderflow_runtime::Settings, consume: bool) -> Running {
        let service = Service::start(settings, spec()).await.expect("start");
        if consume {
            service.consume(QUEUE, Recorder).expect("consume");
        }
        let pool = service.pool.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(
            service
                .bind(axum::Router::new())
                .await
                .expect("bind")
                .run_until_stopped(stop.clone()),
        );
        Running { pool, stop, task }
    }

    /// Stops it and expects a clean stop.
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("join").expect("clean stop");
    }
}

async fn handled(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM handled")
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivery_changes_nothing() {
    let env = TestEnv::new();
    let running = Running::start(&env.settings, true).await;
    let pool = running.pool.clone();

    let (_conn, publisher) = env.publisher().await;
    let once = cancelled("duplicate me");
    for _ in 0..3 {
        publisher.publish(&once, None).await.expect("publish");
    }
    // A batch of distinct messages behind it shows the duplicates did not block anything.
    for i in 0..200 {
        publisher
            .publish(&cancelled(&format!("n{i}")), None)
            .await
            .expect("publish");
    }
    eventually("201 distinct messages handled", WAIT, || {
        let pool = pool.clone();
        async move { handled(&pool).await == 201 }
    })
    .await;
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM handled WHERE message_id = $1")
        .bind(once.message_id)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(copies, 1);
    running.stop().await;
    assert_eq!(
        handled(&env.pool("recorder").await).await,
        201,
        "nothing more after the stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_with_its_reason_and_its_neighbours_are_handled() {
    let env = TestEnv::new();
    let running = Running::start(&env.settings, true).await;
    let pool = running.pool.clone();

    let (conn, publisher) = env.publisher().await;
    publisher
        .publish(&cancelled("before"), None)
        .await
        .expect("publish");
    publisher
        .publish(&cancelled("poison"), None)
        .await
        .expect("publish");
    // Not even an envelope.
    publisher
        .publish_raw(
            &env.names().exchange(Exchange::Events),
            "order.cancelled",
            b"{\"this is\": \"not an envelope\"",
            lapin::BasicProperties::default(),
        )
        .await
        .expect("publish raw");
    publisher
        .publish(&cancelled("after"), None)
        .await
        .expect("publish");

    eventually("both good messages handled", WAIT, || {
        let pool = pool.clone();
        async move { handled(&pool).await == 2 }
    })
    .await;
    let channel = conn.create_channel().await.expect("channel");
    let dead_queue = env.names().queue(&format!("{QUEUE}.dead"));
    let mut reasons = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while reasons.len() < 2 && tokio::time::Instant::now() < deadline {
        match channel
            .basic_get(dead_queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
        {
            Some(message) => {
                let headers = message
                    .delivery
                    .properties
                    .headers()
                    .clone()
                    .unwrap_or_default();
                let reason = match headers.inner().get("x-orderflow-reason") {
                    Some(AMQPValue::LongString(s)) => s.to_string(),
                    other => format!("{other:?}"),
                };
                reasons.push(reason);
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("malformed envelope"), "{reasons:?}");
    assert!(reasons[1].contains("poison"), "{reasons:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_to_the_outbox_is_published_after_a_crash_before_the_relay_ran() {
    let env = TestEnv::new();
    let mut probe = env.probe(&[(Exchange::Events, "order.cancelled")]).await;
    // The process "crashes" right after committing: the state change and its message are in the
    // database, nothing was published.
    let pool = orderflow_runtime::database::connect_and_migrate(
        &env.settings.database,
        "recorder",
        &MIGRATOR,
    )
    .await
    .expect("migrate");
    let message = cancelled("survives the crash");
    let mut tx = pool.begin().await.expect("tx");
    orderflow_runtime::outbox::enqueue(&mut tx, &message, None)
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    pool.close().await;

    // The service comes back; its relay finds the row and publishes it.
    let running = Running::start(&env.settings, false).await;
    let pool = running.pool.clone();
    let received = probe.next_of::<Cancelled>(WAIT).await;
    assert_eq!(received.message_id, message.message_id);
    assert_eq!(received.payload.reason, "survives the crash");
    eventually("the outbox row is removed once confirmed", WAIT, || {
        let pool = pool.clone();
        async move {
            orderflow_runtime::outbox::pending(&pool)
                .await
                .is_ok_and(|n| n == 0)
        }
    })
    .await;
    running.stop().await;
}

/// A broker "node" for the failover test: a TCP proxy on a loopback port to the real broker
/// that can be killed (every connection through it cut at once, as when a node dies, and new
/// ones closed before the broker is reached) and revived. It keeps its listener throughout, so
/// no other test can take its port in between.
struct Node {
    port: u16,
    upstream: String,
    up: AtomicBool,
    /// Connections through it right now.
    open: Arc<AtomicUsize>,
    connections: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

/// Counts a proxied connection while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Node {
    async fn start(upstream: String) -> Arc<Node> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the proxy");
        let node = Arc::new(Node {
            port: listener.local_addr().expect("address").port(),
            upstream,
            up: AtomicBool::new(true),
            open: Arc::new(AtomicUsize::new(0)),
            connections: std::sync::Mutex::new(Vec::new()),
        });
        let accepting = node.clone();
        tokio::spawn(async move {
            while let Ok((mut downstream, _)) = listener.accept().await {
                if !accepting.up.load(Ordering::SeqCst) {
                    continue; // dropped: closed before any byte of AMQP
                }
                let through = accepting.clone();
                let connection = tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&through.upstream).await
                    else {
                        return;
                    };
                    through.open.fetch_add(1, Ordering::SeqCst);
                    let _open = Open(through.open.clone());
                    let _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await;
                });
                accepting
                    .connections
                    .lock()
                    .expect("connections")
                    .push(connection.abort_handle());
            }
        });
        node
    }

    /// The node dies: every connection through it cut, new ones closed at once.
    fn kill(&self) {
        self.up.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().expect("connections").drain(..) {
            connection.abort();
        }
    }

    fn revive(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_broker_node_is_lost_carries_on_through_another_node() {
    let base = TestEnv::new();
    let broker = orderflow_runtime::testing::broker_address(&base.settings);
    let (a, b) = (Node::start(broker.clone()).await, Node::start(broker).await);
    let mut env = base;
    env.settings = env
        .settings
        .with(
            "amqp.addresses",
            format!("127.0.0.1:{},127.0.0.1:{}", a.port, b.port),
        )
        .expect("settings");
    let mut probe = env.probe(&[(Exchange::Events, "order.cancelled")]).await;
    let running = Running::start(&env.settings, true).await;
    let pool = running.pool.clone();
    eventually(
        "both connections open, through the two nodes",
        WAIT,
        || async { a.open() + b.open() == 2 },
    )
    .await;

    // The test's own publisher goes straight to the broker; only the service uses the nodes.
    let (_conn, publisher) = env.publisher().await;
    let mut sent = 0;
    // Lose one node, bring it back, lose the other: whichever node a connection started on,
    // it is lost once and moves.
    for (lost, other) in [(&a, &b), (&b, &a)] {
        lost.kill();
        eventually(
            "both connections moved to the node still up",
            WAIT,
            || async { other.open() == 2 && lost.open() == 0 },
        )
        .await;
        // Consuming works through the other node…
        for i in 0..20 {
            publisher
                .publish(&cancelled(&format!("after losing a node {sent}-{i}")), None)
                .await
                .expect("publish");
        }
        sent += 20;
        eventually(&format!("{sent} messages handled"), WAIT, || {
            let pool = pool.clone();
            async move { handled(&pool).await == sent }
        })
        .await;
        // …and so does publishing: the relay sends what a handler committed to the outbox.
        let message = cancelled(&format!("published after losing a node ({sent})"));
        let mut tx = pool.begin().await.expect("tx");
        orderflow_runtime::outbox::enqueue(&mut tx, &message, None)
            .await
            .expect("enqueue");
        tx.commit().await.expect("commit");
        // (The probe sees the test's messages too; the recorder handles this one as well.)
        while probe.next_of::<Cancelled>(WAIT).await.message_id != message.message_id {}
        sent += 1;
        eventually(&format!("{sent} messages handled"), WAIT, || {
            let pool = pool.clone();
            async move { handled(&pool).await == sent }
        })
        .await;
        lost.revive();
    }
    assert!(!running.task.is_finished(), "the service carried on");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_off_connection_reaches_the_cluster_while_a_node_is_down() {
    let env = TestEnv::new();
    let broker = orderflow_runtime::testing::broker_address(&env.settings);
    // A node that refuses: a port nothing listens on (bound, then released).
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let settings = env
        .settings
        .with("amqp.addresses", format!("{down},{broker}"))
        .expect("settings");
    let target = orderflow_runtime::cluster::Target::from_settings(&settings.amqp).expect("target");
    // Without recovery (as the health check and the dead-letter tools connect), whichever node
    // the random start picks: ten tries, ten connections.
    for _ in 0..10 {
        let connection = target
            .open(lapin::ConnectionProperties::default(), "one-off")
            .await
            .expect("connected through the node that is up");
        let _ = connection.close(200, "done".into()).await;
    }
}
