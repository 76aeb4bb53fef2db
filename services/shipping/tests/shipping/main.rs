//! Shipping against the real broker and database: one test binary, one module per concern.

mod adapter_process;
mod cancellation;
mod carrier_replies;
mod carrier_sim;
mod documenting;
mod http;
mod label_timeout;
mod orders;
mod pickup;
mod python_adapter;
mod rules;
mod support;
mod webhook;
