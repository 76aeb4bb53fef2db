//! The ops console: a web page at `/console` for the people who run orderflow, and the small
//! read and act endpoints under `/v1/console/…` it calls. No build step: the page is three static
//! files compiled into the binary ([`page`]).
//!
//! The page asks for an API key (staff or admin; a shop key is refused with a message saying
//! so), keeps it in the tab's `sessionStorage` and sends it as `Authorization: Bearer …` on every
//! call, like any other client of the API. It polls rather than using server-sent events:
//! `EventSource` cannot send an `Authorization` header, and a key in a URL ends up in logs.
//!
//! - [`flow`]: orders per status now and per minute over the last hour, the stalled ones
//!   ([`stalled`] holds the limits), and search by id, external reference or e-mail.
//! - [`broker`]: queues with depth, consumers and rates from RabbitMQ's management API, and the
//!   dead letters (read, replayed and purged with [`orderflow_runtime::dead_letter`]). The broker's
//!   credentials stay here; the browser only ever talks to intake.
//! - [`stock`]: low stock and stock receipts, forwarded to verification with the caller's own
//!   key, so verification still decides who may do what and the browser needs no second origin.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orderflow_runtime::Settings;
use orderflow_runtime::auth::{Caller, Role, protect};
use orderflow_runtime::config::{RunMode, Secret};
use orderflow_runtime::problem::Problem;
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;

mod broker;
mod flow;
mod page;
pub mod stalled;
mod stock;

/// The `[console]` settings section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsoleSettings {
    /// RabbitMQ's management API (the `rabbitmq_management` plugin).
    pub management_url: String,
    pub management_user: String,
    pub management_password: Secret,
    /// The broker connection for reading, replaying and purging dead letters: a user that may
    /// read every `.dead` queue and publish to the exchanges. Empty: the service's own
    /// `AMQP_URL` (enough in development; production gives intake a least-privilege user, and
    /// the console `orderflow-console` from `orderflow definitions`).
    pub amqp_url: Secret,
    /// Verification's API, which owns the stock.
    pub verification_url: String,
    /// How long a call to either may take.
    pub upstream_timeout_ms: u64,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            management_url: "http://127.0.0.1:15672".to_owned(),
            management_user: "guest".to_owned(),
            management_password: Secret::new("guest"),
            amqp_url: Secret::new(""),
            verification_url: "http://127.0.0.1:8081".to_owned(),
            upstream_timeout_ms: 5000,
        }
    }
}

impl ConsoleSettings {
    /// In production, the development defaults (`guest`) are an error naming the setting: the
    /// console needs a broker user of its own (`orderflow-console`, README "Ops console").
    fn refuse_development_credentials(&self, mode: RunMode) -> anyhow::Result<()> {
        if mode != RunMode::Production {
            return Ok(());
        }
        let own_user = "production needs the console's own broker user (orderflow-console)";
        if self.management_user.trim() == "guest" {
            bail!(
                "ORDERFLOW_CONSOLE__MANAGEMENT_USER is `guest`, a development credential: {own_user}"
            );
        }
        if self.management_password.expose() == "guest" {
            bail!(
                "ORDERFLOW_CONSOLE__MANAGEMENT_PASSWORD is `guest`, a development credential: \
                 {own_user}, with its password"
            );
        }
        let amqp = self.amqp_url.expose();
        if amqp.contains("://guest:") || amqp.contains("://guest@") {
            bail!(
                "ORDERFLOW_CONSOLE__AMQP_URL uses the `guest` user, a development credential: {own_user}"
            );
        }
        Ok(())
    }
}

/// The `[console]` section, refused in production if it holds development credentials.
pub fn settings(settings: &Settings) -> anyhow::Result<ConsoleSettings> {
    let own: ConsoleSettings = settings.section("console")?;
    own.refuse_development_credentials(settings.env)?;
    Ok(own)
}

/// What the console's handlers share.
#[derive(Clone)]
struct Console {
    pool: PgPool,
    /// The whole settings, with `[console] amqp_url` as the broker URL if given: the vhost,
    /// prefix and delivery limit for queues and dead letters.
    settings: Settings,
    own: Arc<ConsoleSettings>,
    stalled: Arc<stalled::StalledSettings>,
    upstream: reqwest::Client,
}

/// The page (no key: it holds no data) and the `/v1/console` endpoints (staff or admin key).
pub fn router(pool: PgPool, settings: &Settings) -> anyhow::Result<Router> {
    let own = self::settings(settings)?;
    let stalled: stalled::StalledSettings = settings.section("stalled")?;
    let upstream = reqwest::Client::builder()
        .timeout(Duration::from_millis(own.upstream_timeout_ms.max(100)))
        .build()
        .context("building the console's HTTP client")?;
    let broker = match own.amqp_url.expose().trim() {
        "" => settings.clone(),
        url => settings
            .with("amqp.url", url)
            .context("[console] amqp_url (ORDERFLOW_CONSOLE__AMQP_URL)")?,
    };
    let console = Console {
        pool,
        settings: broker,
        own: Arc::new(own),
        stalled: Arc::new(stalled),
        upstream,
    };
    let api = Router::new()
        .route("/v1/console/whoami", get(whoami))
        .route("/v1/console/flow", get(flow::board))
        .route("/v1/console/orders", get(flow::search))
        .route("/v1/console/queues", get(broker::queues))
        .route("/v1/console/dead-letters", get(broker::dead_letters))
        .route("/v1/console/dead-letters/{id}/replay", post(broker::replay))
        .route("/v1/console/dead-letters/purge", post(broker::purge))
        .route("/v1/console/stock/low", get(stock::low))
        .route("/v1/console/stock/receipts", post(stock::receive))
        .with_state(console);
    Ok(protect(api, settings.api_keys.clone()).merge(page::router()))
}

/// `GET /v1/console/whoami` → `{"role", "name"}`: the page's log-in check. A shop key gets the
/// 403 that says which role is needed.
async fn whoami(caller: Caller) -> Result<Response, Problem> {
    caller.require(Role::Staff)?;
    Ok(axum::Json(json!({
        "role": caller.role.as_str(),
        "name": caller.key_name,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production(console: &[(&str, &str)]) -> anyhow::Result<ConsoleSettings> {
        let mut env = vec![
            ("ORDERFLOW_ENV", "production"),
            (
                "AMQP_URL",
                "amqp://order-intake:0123456789abcdef@broker/orderflow",
            ),
            (
                "ORDERFLOW_API_KEYS",
                "admin:0123456789abcdef0123456789abcdef",
            ),
        ];
        env.extend_from_slice(console);
        let settings = Settings::load_with(
            None,
            env.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())),
        )?;
        self::settings(&settings)
    }

    #[test]
    fn production_refuses_the_development_broker_credentials_and_names_the_setting() {
        let own = [
            ("ORDERFLOW_CONSOLE__MANAGEMENT_USER", "orderflow-console"),
            ("ORDERFLOW_CONSOLE__MANAGEMENT_PASSWORD", "0123456789abcdef"),
            (
                "ORDERFLOW_CONSOLE__AMQP_URL",
                "amqp://orderflow-console:0123456789abcdef@broker/orderflow",
            ),
        ];
        production(&own).expect("the console's own user");
        for (setting, guest) in [
            ("ORDERFLOW_CONSOLE__MANAGEMENT_USER", "guest"),
            ("ORDERFLOW_CONSOLE__MANAGEMENT_PASSWORD", "guest"),
            (
                "ORDERFLOW_CONSOLE__AMQP_URL",
                "amqp://guest:guest@broker/orderflow",
            ),
        ] {
            let mut env = own.to_vec();
            env.retain(|(k, _)| *k != setting);
            env.push((setting, guest));
            let error = format!("{:#}", production(&env).expect_err(setting));
            assert!(
                error.contains(setting) && error.contains("development credential"),
                "{error}"
            );
        }
        // Unset, the defaults are the development ones: refused too.
        let error = format!("{:#}", production(&[]).expect_err("defaults"));
        assert!(
            error.contains("ORDERFLOW_CONSOLE__MANAGEMENT_USER"),
            "{error}"
        );
        let development = Settings::load_with(None, Vec::<(String, String)>::new())
            .expect("development settings");
        settings(&development).expect("development keeps guest");
    }
}
