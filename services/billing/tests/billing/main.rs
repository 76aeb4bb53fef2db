//! billing against the real RabbitMQ and PostgreSQL; one binary for all its integration tests.

mod helpers;
mod invoices;
mod journeys;
mod payments;
