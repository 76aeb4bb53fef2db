//! `<binary> healthcheck`: the container health check, built into every binary so an image
//! needs neither curl nor a shell. Exit status 0 when healthy, 1 otherwise.
//!
//! A process with an HTTP port asks its own `GET /readyz` (database and broker reachable) on
//! the host and port of its settings section, with a plain HTTP/1.1 request and a short timeout.
//! A process without one (the carrier simulator) checks that its broker accepts a connection
//! with its credentials: that is what it needs to work, and a simulator whose own connection is
//! lost for good exits non-zero, so its supervisor restarts it either way.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Settings;

/// How long one check may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The whole `<binary> healthcheck`: prints the outcome, exit status 0 or 1.
pub fn run(name: &str, settings: &Settings) -> std::process::ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(check(settings, name)));
    match outcome {
        Ok(status) => {
            println!("{name}: {status}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: unhealthy: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Checks the process `name` (its section is `name` with `-` as `_`).
pub async fn check(settings: &Settings, name: &str) -> anyhow::Result<String> {
    let section = name.replace('-', "_");
    let http = settings.http(&section)?;
    if http.port == 0 {
        return tokio::time::timeout(TIMEOUT, broker(settings))
            .await
            .context("the broker did not answer in time")?;
    }
    let host = loopback_for(&http.host);
    tokio::time::timeout(TIMEOUT, ready(host, http.port))
        .await
        .with_context(|| format!("GET /readyz on {host}:{} did not answer in time", http.port))?
}

/// A server bound to every interface is asked on loopback.
fn loopback_for(host: &str) -> &str {
    match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        other => other,
    }
}

async fn ready(host: &str, port: u16) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect((host, port))
        .await
        .with_context(|| format!("connecting to {host}:{port}"))?;
    let request = format!(
        "GET /readyz HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: orderflow-healthcheck\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 512];
    // The status line is all we need; the body says which dependency is down.
    while response.len() < 4096 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    let status = text.lines().next().unwrap_or_default();
    match status.split_whitespace().nth(1) {
        Some("200") => Ok("ready".to_owned()),
        Some(_) => bail!(
            "not ready: {status} {}",
            text.split("\r\n\r\n").nth(1).unwrap_or_default().trim()
        ),
        None => bail!("{host}:{port} did not answer HTTP"),
    }
}

async fn broker(settings: &Settings) -> anyhow::Result<String> {
    let connection = crate::cluster::Target::from_settings(&settings.amqp)?
        .open(lapin::ConnectionProperties::default(), "healthcheck")
        .await
        .with_context(|| format!("connecting to RabbitMQ at {:?}", settings.amqp.url))?;
    let _ = connection.close(200, "healthcheck".into()).await;
    Ok("broker reachable".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ready_server_passes_and_an_unready_one_fails_with_its_reason() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            for answer in [
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                "HTTP/1.1 503 Service Unavailable\r\n\r\n{\"database\":false}",
            ] {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                socket.write_all(answer.as_bytes()).await.expect("write");
            }
        });
        assert_eq!(ready("127.0.0.1", port).await.expect("ready"), "ready");
        let unready = ready("127.0.0.1", port).await.expect_err("not ready");
        assert!(unready.to_string().contains("database"), "{unready}");
        server.await.expect("server");
    }

    #[test]
    fn a_server_on_every_interface_is_asked_on_loopback() {
        assert_eq!(loopback_for("0.0.0.0"), "127.0.0.1");
        assert_eq!(loopback_for("::"), "::1");
        assert_eq!(loopback_for("10.0.0.5"), "10.0.0.5");
    }
}
