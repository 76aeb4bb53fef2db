//! Webhooks over HTTPS: receivers that speak only TLS, with certificates made here — one issued
//! by a private CA that the service is told to trust, one it has never heard of — and the rule
//! that production refuses plain `http://` subscriptions unless the deployment allows them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use orderflow_runtime::Settings;
use orderflow_runtime::testing::eventually;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use uuid::Uuid;

use crate::helpers::{ACME, App, STAFF, WAIT, verified_order_of};

/// A private CA named `name` (its certificate as PEM) and a server configured with a certificate for
/// 127.0.0.1 that the CA issued.
struct Pki {
    ca_pem: String,
    server: ServerConfig,
}

fn private_pki(name: &str) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    let certificate = params.signed_by(&key, &issuer).expect("server certificate");
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server TLS config");
    Pki {
        ca_pem: ca.pem(),
        server,
    }
}

/// Accepts TCP connections and completes the TLS handshake before axum sees them; a client
/// that refuses the certificate is counted and never reaches a handler.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    refused_handshakes: Arc<AtomicUsize>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            match self.acceptor.accept(stream).await {
                Ok(tls) => return (tls, addr),
                Err(_) => {
                    self.refused_handshakes.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The signature header and the body of one call.
type Call = (String, Vec<u8>);

/// A shop's HTTPS endpoint: the calls it received (signature header, body) and the handshakes
/// that clients broke off.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<Call>>>,
    refused_handshakes: Arc<AtomicUsize>,
}

impl Receiver {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }
}

async fn record(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-orderflow-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    receiver
        .calls
        .lock()
        .expect("lock")
        .push((signature, body.to_vec()));
    StatusCode::NO_CONTENT
}

/// Serves `receiver` over TLS only; its `https://` URL.
async fn serve_tls(receiver: Receiver, server: ServerConfig) -> String {
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(server)),
        refused_handshakes: receiver.refused_handshakes.clone(),
    };
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(record))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("https://{addr}/hooks")
}

/// Removes the file when the test ends, however it ends.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_over_https_arrives_signed_and_an_untrusted_certificate_is_a_retried_failure() {
    let trusted = private_pki("a shop");
    let stranger = private_pki("a stranger");
    let ca_file =
        TempFile(std::env::temp_dir().join(format!("orderflow-ca-{}.pem", Uuid::now_v7())));
    std::fs::write(&ca_file.0, &trusted.ca_pem).expect("CA file");
    let ca_path = ca_file.0.display().to_string();
    let app = App::spawn_with_shops_configured(|settings| {
        settings
            .with("order_intake.webhook_ca_file", ca_path)?
            .with("order_intake.notification_max_attempts", 3)?
            .with("order_intake.notification_first_backoff_ms", 50)?
            .with("order_intake.notification_poll_ms", 20)
    })
    .await;
    let shop = Receiver::default();
    let shop_url = serve_tls(shop.clone(), trusted.server).await;
    let impostor = Receiver::default();
    let impostor_url = serve_tls(impostor.clone(), stranger.server).await;
    let secret = "acme-webhook-secret-0002";
    for url in [&shop_url, &impostor_url] {
        let (status, hook) = app.subscribe_webhook(ACME, url, secret).await;
        assert_eq!(status, 201, "{url}: {hook}");
    }
    let id = verified_order_of(&app, ACME, "acme-tls").await;

    eventually("the shop's HTTPS endpoint is called", WAIT, || async {
        !shop.calls().is_empty()
    })
    .await;
    let (signature, body) = shop.calls()[0].clone();
    assert_eq!(
        Some(signature),
        order_intake::delivery::signature(secret, &body),
        "the body arrived intact and signed with the subscription's secret"
    );
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (body["order_id"].as_str(), body["status"].as_str()),
        (Some(id.to_string().as_str()), Some("verified"))
    );

    let log_path = format!("/v1/orders/{id}/notifications");
    let untrusted = |log: &Value| -> Option<Value> {
        log["deliveries"]
            .as_array()?
            .iter()
            .find(|d| d["url"] == impostor_url.as_str())
            .cloned()
    };
    eventually(
        "the untrusted endpoint's delivery failed after its 3 attempts",
        WAIT,
        || async {
            let (_, log) = app.get(&log_path, STAFF).await;
            untrusted(&log).is_some_and(|d| d["state"] == "failed")
        },
    )
    .await;
    let (_, log) = app.get(&log_path, ACME).await;
    let failed = untrusted(&log).expect("the untrusted delivery");
    assert_eq!(failed["attempts"], 3, "retried: {failed}");
    let reason = failed["last_error"].as_str().unwrap_or("");
    assert!(
        reason.contains("invalid peer certificate: UnknownIssuer"),
        "the log says why: {reason}"
    );
    let delivered = log["deliveries"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["url"] == shop_url.as_str()).cloned())
        .expect("the trusted delivery");
    assert_eq!(
        (delivered["state"].as_str(), delivered["attempts"].as_i64()),
        (Some("delivered"), Some(1))
    );
    assert!(
        impostor.calls().is_empty(),
        "nothing was sent to the impostor"
    );
    assert!(impostor.refused_handshakes.load(Ordering::SeqCst) >= 3);

    let (status, _) = app.get(&format!("/v1/orders/{id}"), ACME).await;
    assert_eq!(status, 200, "the service carries on");
    app.stop().await;
}

/// Production mode, with the console's own broker user (production refuses `guest` there).
fn production(settings: Settings) -> anyhow::Result<Settings> {
    settings
        .with("env", "production")?
        .with("console.management_user", "orderflow-console")?
        .with("console.management_password", "0123456789abcdef")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_plain_http_webhooks_unless_the_deployment_allows_them() {
    let app = App::spawn_with_shops_configured(production).await;
    let secret = "acme-webhook-secret-0003";
    let (status, problem) = app
        .subscribe_webhook(ACME, "http://127.0.0.1:9/hooks", secret)
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
    assert_eq!(problem["errors"][0]["rule"], "https", "{problem}");
    let (status, problem) = app
        .subscribe_webhook(ACME, "https://shop.example/hooks", secret)
        .await;
    assert_eq!(status, 201, "{problem}");
    app.stop().await;

    let allowed = App::spawn_with_shops_configured(|settings| {
        production(settings)?.with("order_intake.webhook_allow_http", true)
    })
    .await;
    let (status, hook) = allowed
        .subscribe_webhook(ACME, "http://relay.internal/hooks", secret)
        .await;
    assert_eq!(status, 201, "allowed explicitly: {hook}");
    allowed.stop().await;
}
