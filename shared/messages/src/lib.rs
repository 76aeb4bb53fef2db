//! orderflow's message catalogue: the one truth about what crosses the broker.
//!
//! - [`envelope`]: the JSON envelope every message travels in, and the [`Event`] trait that ties a
//!   payload type to its `type` string, schema version and route.
//! - [`order`], [`payment`], [`shipment`], [`stock`]: the events, grouped by what they are about.
//! - [`types`]: the value types the events share (money, currency, address, channel, …). They are
//!   parsed on the way in, so a message that deserialises holds valid values.
//! - [`schema`]: JSON Schema export, written to `shared/messages/schemas/` for outside integrators.
//! - [`catalogue`]: every event type in one list, which the topology, the schema export and the
//!   tooling iterate over.
//!
//! This crate depends on nothing of ours, so a carrier adapter written in Rust can use it alone.

pub mod catalogue;
pub mod envelope;
pub mod order;
pub mod payment;
pub mod schema;
pub mod shipment;
pub mod stock;
pub mod types;

pub use envelope::{Envelope, Event, Exchange, Route};
