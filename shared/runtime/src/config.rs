//! Layered settings: built-in defaults → optional file (`--config FILE`) → environment.
//!
//! `AMQP_URL` and `DATABASE_URL` are honoured as such; everything else is
//! `ORDERFLOW_<SECTION>__<KEY>` (e.g. `ORDERFLOW_AMQP__PREFETCH=500`,
//! `ORDERFLOW_VERIFICATION__PORT=9081`) or `ORDERFLOW_<KEY>` for top-level keys (`ORDERFLOW_ENV`,
//! `ORDERFLOW_API_KEYS`). Services read their own section with [`Settings::section`].

use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::ApiKeys;

/// Keys accepted in development when `ORDERFLOW_API_KEYS` is not set. Production refuses them.
pub const DEVELOPMENT_API_KEYS: &str =
    "admin:dev-admin-key,staff:dev-staff-key,shop:dev-shop-key,carrier:dev-carrier-key";

const DEFAULTS: &str = r#"
env = "development"
api_keys = ""

[amqp]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
addresses = ""
prefix = ""
prefetch = 256
batch_size = 16
delivery_limit = 10
heartbeat_secs = 30
connect_timeout_secs = 60

[database]
url = "postgres://postgres@127.0.0.1:5432/orderflow"
max_connections = 8
connect_timeout_secs = 60
migrate = true

[log]
level = "info"
format = "auto"

[order_intake]
host = "127.0.0.1"
port = 8080

[verification]
host = "127.0.0.1"
port = 8081

[fulfilment]
host = "127.0.0.1"
port = 8082

[shipping]
host = "127.0.0.1"
port = 8083

[billing]
host = "127.0.0.1"
port = 8084
"#;

/// Development or production. Production refuses development defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    Development,
    Production,
}

/// A value that must never reach a log: `Debug` and `Display` print it redacted.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `scheme://user:password@host/…` → `scheme://user:***@host/…`; anything else → `***`.
pub fn redact_url(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &raw[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &raw[..scheme_end + 3], &raw[at..]),
                None => raw.to_owned(),
            }
        }
        (Some(_), _) => raw.to_owned(),
        _ => "***".to_owned(),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    pub url: Secret,
    /// The nodes of a cluster, comma-separated `host` or `host:port` (`AMQP_URL` gives the
    /// user, password and vhost); empty: the URL's host. See [`crate::cluster`].
    pub addresses: String,
    /// Prepended to every exchange and queue name; lets several deployments (or tests) share a
    /// vhost. Empty in production deployments, which use a vhost of their own.
    pub prefix: String,
    /// Unacked deliveries the broker may push to each consumer.
    pub prefetch: u16,
    /// Most deliveries handled in one database transaction (taken only if already buffered).
    pub batch_size: usize,
    /// `x-delivery-limit` of every queue: deliveries before a message is dead-lettered.
    pub delivery_limit: u32,
    pub heartbeat_secs: u16,
    /// How long the first connection at start-up is retried (with backoff) before the process
    /// gives up; 0: one try.
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub max_connections: u32,
    /// How long the first connection at start-up is retried (with backoff) before the process
    /// gives up; 0: one try.
    pub connect_timeout_secs: u64,
    /// Whether a service runs its migrations at start (`true`, for development and
    /// `orderflow up`) or only checks that the schema is at the version it was built for
    /// (`false`: a separate `orderflow migrate` owns the structure, as in the compose files).
    pub migrate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty in development, JSON in production.
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// Where a service's HTTP server listens: the `host` and `port` of its section. A section
/// without them listens on loopback on a free port.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
        }
    }
}

/// Settings shared by every service, plus the raw layers for service sections.
#[derive(Clone)]
pub struct Settings {
    pub env: RunMode,
    pub api_keys: ApiKeys,
    pub amqp: AmqpSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    raw: config::Config,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("env", &self.env)
            .field("api_keys", &self.api_keys)
            .field("amqp", &self.amqp)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Common {
    env: RunMode,
    api_keys: Secret,
    amqp: AmqpSettings,
    database: DatabaseSettings,
    log: LogSettings,
}

impl Settings {
    /// Loads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        Self::load_with(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (tests use this).
    pub fn load_with(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                bail!(
                    "config file {} does not exist (given with --config)",
                    path.display()
                );
            }
            builder = builder.add_source(config::File::from(path));
        }
        let env: std::collections::HashMap<String, String> = env.into_iter().collect();
        let mut overrides = env.clone();
        overrides.retain(|k, _| k.starts_with("ORDERFLOW_"));
        builder = builder.add_source(
            config::Environment::with_prefix("ORDERFLOW")
                .prefix_separator("_")
                .separator("__")
                .source(Some(overrides)),
        );
        if let Some(url) = env.get("AMQP_URL") {
            builder = builder.set_override("amqp.url", url.as_str())?;
        }
        if let Some(url) = env.get("DATABASE_URL") {
            builder = builder.set_override("database.url", url.as_str())?;
        }
        let raw = builder.build().context("reading configuration")?;
        let common: Common = raw
            .clone()
            .try_deserialize()
            .context("invalid configuration (see the README's configuration table)")?;

        let keys_source = if common.api_keys.expose().trim().is_empty() {
            if common.env == RunMode::Production {
                bail!(
                    "ORDERFLOW_API_KEYS is empty: production needs API keys, as \
                     comma-separated role:key pairs (roles: admin, staff, shop, carrier)"
                );
            }
            DEVELOPMENT_API_KEYS
        } else {
            common.api_keys.expose()
        };
        let api_keys = ApiKeys::parse(keys_source).context("ORDERFLOW_API_KEYS")?;

        let settings = Settings {
            env: common.env,
            api_keys,
            amqp: common.amqp,
            database: common.database,
            log: common.log,
            raw,
        };
        settings.refuse_development_defaults()?;
        // A bad node list is refused at start, naming the setting (the URL itself is read when
        // connecting).
        crate::cluster::parse_addresses(&settings.amqp.addresses, 5672)?;
        Ok(settings)
    }

    /// In production, development credentials are an error that names the setting.
    fn refuse_development_defaults(&self) -> anyhow::Result<()> {
        if self.env != RunMode::Production {
            return Ok(());
        }
        let amqp = self.amqp.url.expose();
        if amqp.contains("://guest:guest@") || amqp.contains("://guest@") {
            bail!("AMQP_URL uses the `guest` user: production needs a broker user of its own");
        }
        if self.api_keys.contains_any(DEVELOPMENT_API_KEYS) {
            bail!("ORDERFLOW_API_KEYS contains a development key (dev-…-key): set real keys");
        }
        if self.api_keys.has_short_keys(24) {
            bail!("ORDERFLOW_API_KEYS: every production key must be at least 24 characters");
        }
        Ok(())
    }

    /// Reads a service's own section (e.g. `verification`) into `T`; missing keys take `T`'s
    /// serde defaults.
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> anyhow::Result<T> {
        match self.raw.get::<T>(name) {
            Ok(value) => Ok(value),
            Err(config::ConfigError::NotFound(_)) => serde_json::from_value(serde_json::json!({}))
                .with_context(|| format!("section [{name}] is missing")),
            Err(e) => Err(e).with_context(|| format!("invalid settings in section [{name}]")),
        }
    }

    /// The HTTP address of a service's section.
    pub fn http(&self, section: &str) -> anyhow::Result<HttpSettings> {
        self.section(section)
    }

    /// A copy with one value overridden, e.g. `("order_intake.port", "0")` (tests, `orderflow up`).
    pub fn with(&self, key: &str, value: impl Into<config::Value>) -> anyhow::Result<Settings> {
        let raw = config::Config::builder()
            .add_source(self.raw.clone())
            .set_override(key, value)?
            .build()?;
        let common: Common = raw.clone().try_deserialize()?;
        Ok(Settings {
            env: common.env,
            api_keys: self.api_keys.clone(),
            amqp: common.amqp,
            database: common.database,
            log: common.log,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_defaults_and_sections() {
        let s = Settings::load_with(
            None,
            env(&[
                ("AMQP_URL", "amqp://u:p@broker:5672/%2f"),
                ("DATABASE_URL", "postgres://db/x"),
                ("ORDERFLOW_AMQP__PREFETCH", "500"),
                ("ORDERFLOW_VERIFICATION__PORT", "9081"),
            ]),
        )
        .expect("settings");
        assert_eq!(s.amqp.url.expose(), "amqp://u:p@broker:5672/%2f");
        assert_eq!(s.database.url.expose(), "postgres://db/x");
        assert_eq!(s.amqp.prefetch, 500);
        assert_eq!(s.http("verification").expect("section").port, 9081);
        assert_eq!(s.http("billing").expect("section").port, 8084);
    }

    #[test]
    fn a_file_layer_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("orderflow-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("orderflow.toml");
        std::fs::write(&file, "[amqp]\nprefetch = 42\nbatch_size = 7\n").expect("write");
        let s = Settings::load_with(Some(&file), env(&[("ORDERFLOW_AMQP__BATCH_SIZE", "9")]))
            .expect("settings");
        assert_eq!(s.amqp.prefetch, 42);
        assert_eq!(s.amqp.batch_size, 9);
        let missing = Settings::load_with(Some(&dir.join("nope.toml")), env(&[]));
        std::fs::remove_dir_all(&dir).expect("remove the test's directory");
        assert!(
            missing
                .expect_err("missing file")
                .to_string()
                .contains("nope.toml")
        );
    }

    #[test]
    fn production_refuses_development_credentials_and_names_the_setting() {
        let no_keys = Settings::load_with(
            None,
            env(&[
                ("ORDERFLOW_ENV", "production"),
                ("AMQP_URL", "amqp://svc:pw@b/%2f"),
            ]),
        );
        assert!(format!("{:#}", no_keys.expect_err("no keys")).contains("ORDERFLOW_API_KEYS"));

        let guest = Settings::load_with(
            None,
            env(&[
                ("ORDERFLOW_ENV", "production"),
                (
                    "ORDERFLOW_API_KEYS",
                    "admin:0123456789abcdef0123456789abcdef",
                ),
            ]),
        );
        assert!(format!("{:#}", guest.expect_err("guest")).contains("AMQP_URL"));

        let ok = Settings::load_with(
            None,
            env(&[
                ("ORDERFLOW_ENV", "production"),
                ("AMQP_URL", "amqp://svc:pw@b/%2f"),
                (
                    "ORDERFLOW_API_KEYS",
                    "admin:0123456789abcdef0123456789abcdef",
                ),
            ]),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = Settings::load_with(None, env(&[("AMQP_URL", "amqp://svc:hunter2@b/%2f")]))
            .expect("settings");
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("dev-admin-key"), "{printed}");
    }
}
