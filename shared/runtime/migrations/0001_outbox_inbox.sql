-- The transactional outbox: rows written in the same transaction as the state change that
-- caused them; the relay publishes them with confirms and then deletes them.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    message_id      UUID        NOT NULL UNIQUE,
    exchange        TEXT        NOT NULL,
    routing_key     TEXT        NOT NULL,
    kind            TEXT        NOT NULL,
    body            BYTEA       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);

-- The inbox: one row per (consumer, message) handled; inserting it first in the handler's
-- transaction makes a redelivered message a no-op.
CREATE TABLE inbox (
    consumer     TEXT        NOT NULL,
    message_id   UUID        NOT NULL,
    kind         TEXT        NOT NULL,
    handled_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
