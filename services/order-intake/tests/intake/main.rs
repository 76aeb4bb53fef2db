//! order-intake against the real RabbitMQ and PostgreSQL: placing orders over HTTP, and
//! following their journey from the events other services publish.

mod console;
mod documenting;
mod feedback;
mod following;
mod helpers;
mod https_webhooks;
mod importing;
mod notifying;
mod placing;
mod reading;
mod requests;
