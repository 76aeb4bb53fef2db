//! Shipping against the real broker and database: one test binary, one module per concern.

mod carrier_replies;
mod carrier_sim;
mod http;
mod orders;
mod support;
