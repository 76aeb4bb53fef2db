//! The broker nodes a process connects to, and connections that move to another node on loss.
//!
//! `AMQP_URL` gives the user, password, vhost, scheme and options; `amqp.addresses`
//! (`ORDERFLOW_AMQP__ADDRESSES`, comma-separated `host` or `host:port`) names the nodes of a
//! cluster, and when it is empty the URL's own host is the only node. Every connection starts at
//! a node picked at random, so replicas spread over the cluster, and each time lapin's recovery
//! reconnects after a loss (with its backoff between attempts) it tries the next node: a lost
//! node costs a reconnect, not the service. Each attempt is logged with the node it goes to.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use lapin::tcp::{AMQPUriTcpExt, TLSConfig};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::config::AmqpSettings;

/// One broker node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `amqp.addresses`; an entry without a port takes `default_port` (the URL's).
pub fn parse_addresses(list: &str, default_port: u16) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry.contains("://") {
            bail!(
                "amqp.addresses: `{entry}` is a URL: give `host` or `host:port` (the user, \
                 password and vhost come from AMQP_URL)"
            );
        }
        let (host, port) = match entry.strip_prefix('[') {
            // `[::1]:5672` or `[::1]`
            Some(rest) => match rest.split_once(']') {
                Some((host, "")) => (host, None),
                Some((host, rest)) => (host, Some(rest.strip_prefix(':').unwrap_or(rest))),
                None => bail!("amqp.addresses: `{entry}` opens `[` without closing it"),
            },
            None => match entry.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (entry, None),
            },
        };
        let port = match port {
            None => default_port,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .with_context(|| {
                    format!("amqp.addresses: `{entry}`: the port must be a number from 1 to 65535")
                })?,
        };
        if host.is_empty() || host.contains(['/', '@', ' ', '?', '#']) {
            bail!("amqp.addresses: `{entry}` is not `host` or `host:port`");
        }
        nodes.push(Node {
            host: host.to_owned(),
            port,
        });
    }
    Ok(nodes)
}

/// Where to connect: the URL (credentials, vhost, options) and the nodes to try.
#[derive(Debug, Clone)]
pub struct Target {
    pub uri: AMQPUri,
    pub nodes: Arc<[Node]>,
}

impl Target {
    /// `url` with `addresses` (empty: the URL's own host); errors name the setting.
    pub fn new(url: &str, addresses: &str) -> anyhow::Result<Target> {
        let uri: AMQPUri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("AMQP_URL is not an AMQP URL: {e}"))?;
        let mut nodes = parse_addresses(addresses, uri.authority.port)?;
        if nodes.is_empty() {
            nodes.push(Node {
                host: uri.authority.host.clone(),
                port: uri.authority.port,
            });
        }
        Ok(Target {
            uri,
            nodes: nodes.into(),
        })
    }

    pub fn from_settings(settings: &AmqpSettings) -> anyhow::Result<Target> {
        Target::new(settings.url.expose(), &settings.addresses)
    }

    /// Opens a connection, starting at a random node and moving to the next one on every
    /// further attempt: lapin's retries and reconnects (with auto-recovery in `properties`)
    /// and, when an attempt gives up, one more try at each other node, so a process without
    /// recovery (a health check, the dead-letter tools) reaches the cluster while a node is
    /// down. Each TCP connect is bounded by the URL's `connection_timeout` (milliseconds;
    /// default 10 s), so a node that is cut off, not refusing, costs seconds, not minutes.
    /// `name` tells connections apart in the log.
    pub async fn open(
        &self,
        properties: ConnectionProperties,
        name: &str,
    ) -> lapin::Result<Connection> {
        let start = random_index(self.nodes.len());
        let mut last = None;
        for k in 0..self.nodes.len() {
            match self
                .open_from(start + k, properties.clone(), name, k > 0)
                .await
            {
                Ok(connection) => return Ok(connection),
                Err(error) => last = Some(error),
            }
        }
        Err(last.expect("at least one node"))
    }

    async fn open_from(
        &self,
        start: usize,
        properties: ConnectionProperties,
        name: &str,
        retrying: bool,
    ) -> lapin::Result<Connection> {
        let nodes = self.nodes.clone();
        let next = AtomicUsize::new(start);
        let attempts = AtomicUsize::new(usize::from(retrying));
        let name = name.to_owned();
        let connect_timeout = Duration::from_millis(
            self.uri
                .query
                .connection_timeout
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
        );
        let runtime = lapin::runtime::default_runtime()?;
        Connection::connector(
            self.uri.clone(),
            runtime,
            async move |uri: AMQPUri, runtime| {
                let node = &nodes[next.fetch_add(1, Ordering::Relaxed) % nodes.len()];
                let attempt = attempts.fetch_add(1, Ordering::Relaxed);
                if attempt == 0 {
                    tracing::info!(connection = %name, %node, "connecting to RabbitMQ node");
                } else {
                    tracing::warn!(connection = %name, %node, attempt, "reconnecting, to RabbitMQ node");
                }
                let mut target = uri;
                target.authority.host = node.host.clone();
                target.authority.port = node.port;
                let connected = tokio::time::timeout(
                    connect_timeout,
                    target.connect_with_config_async(TLSConfig::default(), &runtime),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no TCP connection within {connect_timeout:?}"),
                    ))
                });
                connected
                    .inspect_err(|error| {
                        tracing::warn!(connection = %name, %node, %error, "RabbitMQ node unreachable");
                    })
                    .map_err(lapin::Error::from)
            },
            properties,
        )
        .await
    }
}

/// TCP connect timeout when the URL sets no `connection_timeout`.
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;

fn random_index(len: usize) -> usize {
    (uuid::Uuid::new_v4().as_u128() % len.max(1) as u128) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: u16) -> Node {
        Node {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn addresses_are_hosts_with_optional_ports() {
        assert_eq!(
            parse_addresses(" rabbit-1:5672, rabbit-2 ,[::1]:5673,[fe80::1]", 5671).expect("valid"),
            vec![
                node("rabbit-1", 5672),
                node("rabbit-2", 5671),
                node("::1", 5673),
                node("fe80::1", 5671)
            ]
        );
        assert!(parse_addresses("", 5672).expect("empty").is_empty());
    }

    #[test]
    fn a_bad_address_is_refused_naming_the_setting_and_the_rule() {
        for (bad, rule) in [
            ("rabbit-1:0", "from 1 to 65535"),
            ("rabbit-1:x", "from 1 to 65535"),
            ("rabbit-1:70000", "from 1 to 65535"),
            ("amqp://rabbit-1", "is a URL"),
            ("u@rabbit-1", "not `host` or `host:port`"),
            ("[::1", "without closing"),
            (":5672", "not `host` or `host:port`"),
        ] {
            let error = parse_addresses(bad, 5672).expect_err(bad).to_string();
            assert!(error.starts_with("amqp.addresses: "), "{bad}: {error}");
            assert!(error.contains(rule), "{bad}: {error}");
        }
    }

    #[test]
    fn without_addresses_the_urls_host_is_the_one_node() {
        let target = Target::new("amqp://u:p@broker:5700/%2f", "").expect("valid");
        assert_eq!(&*target.nodes, &[node("broker", 5700)]);
        let target = Target::new("amqp://u:p@broker/%2f", "a,b:5673").expect("valid");
        assert_eq!(&*target.nodes, &[node("a", 5672), node("b", 5673)]);
        assert_eq!(target.uri.authority.userinfo.username, "u");
    }
}
