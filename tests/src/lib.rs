//! End-to-end suites across services live in `tests/`: the whole journey of an order through
//! all five services, and the runtime's reliability guarantees (outbox, inbox, dead letters)
//! exercised through a minimal service of their own.
