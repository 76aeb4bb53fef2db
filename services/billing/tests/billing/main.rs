//! billing against the real RabbitMQ and PostgreSQL; one binary for all its integration tests.

mod coupons;
mod documenting;
mod exports;
mod helpers;
mod invoices;
mod journeys;
mod methods;
mod payments;
mod refunds;
