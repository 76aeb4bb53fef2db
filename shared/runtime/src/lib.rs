//! What every orderflow service needs, written once.
//!
//! A service is a [`service::ServiceSpec`] (its name, schema, migrations and queues) plus its
//! handlers and HTTP routes. [`service::Service::start`] does the rest in a fixed order:
//!
//! 1. [`database`]: create the database if missing, create the service's schema, run the runtime's
//!    migrations (outbox, inbox) and the service's own;
//! 2. [`amqp`]: one connection for publishing and one for consuming, heartbeats on, automatic
//!    recovery on; [`topology`] declares exchanges, quorum queues and their dead-letter queues;
//! 3. [`outbox`]: the relay that publishes what handlers and HTTP requests wrote to the outbox,
//!    woken in-process after each commit that wrote to it, with publisher confirms and `mandatory`;
//! 4. [`consumer`]: one loop per queue that takes buffered deliveries in batches, deduplicates
//!    them in the [`inbox`](consumer) inside the handler's transaction and acks after commit;
//! 5. [`http`]: `/healthz`, `/readyz`, `/metrics` next to the service's `/v1` API, guarded by
//!    [`auth`], answering errors as [`problem`] documents;
//! 6. graceful shutdown: stop consuming, finish in-flight batches, drain the outbox, close.
//!
//! The first connection to each (database, broker) is retried with backoff for a bounded time
//! ([`first_connection`]). [`config`] loads layered settings and [`telemetry`] sets up logs and metrics; [`openapi`]
//! is what every service's generated `/openapi.json` shares.
//! [`testing`] gives each test its own database and queue-name prefix.

pub mod amqp;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod consumer;
pub mod database;
pub mod dead_letter;
pub mod first_connection;
pub mod healthcheck;
pub mod http;
pub mod openapi;
pub mod outbox;
pub mod problem;
pub mod service;
pub mod telemetry;
pub mod testing;
pub mod topology;

pub use config::Settings;
pub use consumer::{HandleError, Handler, Incoming};
pub use service::{BoundService, Service, ServiceSpec};
pub use tokio_util::sync::CancellationToken;
