-- Orders as intake accepted them, and what happened to them since.

CREATE TABLE orders (
    id                 UUID        PRIMARY KEY,
    channel            TEXT        NOT NULL,
    external_reference TEXT,
    -- What customers and ops see; moved only by lifecycle.rs's rules.
    status             TEXT        NOT NULL CHECK (status IN (
                           'placed', 'backordered', 'verified', 'packed', 'shipped', 'delivered',
                           'invoiced', 'paid', 'completed', 'on_hold', 'rejected', 'cancelled')),
    -- The furthest main-line status reached: an order on hold or backordered keeps its place in
    -- the journey here, so a late event can be told from a step forward.
    progress           TEXT        NOT NULL CHECK (progress IN (
                           'placed', 'verified', 'packed', 'shipped', 'delivered',
                           'invoiced', 'paid', 'completed')),
    customer_id        TEXT,
    customer_email     TEXT        NOT NULL,
    customer_name      TEXT        NOT NULL,
    currency           TEXT        NOT NULL,
    shipping_address   JSONB       NOT NULL,
    billing_address    JSONB,
    delivery           JSONB       NOT NULL,
    -- The method only: the card token travels in `order.placed` to billing and is never stored.
    payment_method     TEXT        NOT NULL,
    coupon_code        TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A shop that sends the same order twice gets a 409 naming the first one. NULL references
    -- are distinct, so orders without one never collide.
    CONSTRAINT orders_external_reference_unique UNIQUE (channel, external_reference)
);
CREATE INDEX orders_newest ON orders (created_at DESC, id DESC);
CREATE INDEX orders_by_status ON orders (status, created_at DESC, id DESC);

CREATE TABLE order_lines (
    order_id       UUID        NOT NULL REFERENCES orders (id),
    line_no        INTEGER     NOT NULL CHECK (line_no >= 1),
    sku            TEXT        NOT NULL,
    quantity       INTEGER     NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    -- Minor units of the order's currency, as the customer saw it.
    unit_price     BIGINT      NOT NULL CHECK (unit_price >= 0),
    customisations TEXT[]      NOT NULL DEFAULT '{}',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, line_no)
);

-- Every event of the order's journey, once each (the message id is unique).
CREATE TABLE timeline (
    id          BIGSERIAL   PRIMARY KEY,
    order_id    UUID        NOT NULL REFERENCES orders (id),
    message_id  UUID        NOT NULL UNIQUE,
    kind        TEXT        NOT NULL,
    -- The order's status right after this event.
    status      TEXT        NOT NULL,
    producer    TEXT        NOT NULL,
    detail      TEXT        NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX timeline_of_order ON timeline (order_id, occurred_at, id);

-- `Idempotency-Key`s of `POST /v1/orders`: the key is the primary key, so two concurrent
-- requests with one key cannot both insert; the hash of the body tells a replay from a misuse.
CREATE TABLE idempotency_keys (
    key          TEXT        PRIMARY KEY,
    request_hash BYTEA       NOT NULL,
    -- Written before the order in the same transaction, hence checked at commit.
    order_id     UUID        NOT NULL REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Messages to customers. Recording one is sending it; a mailer would read from here.
CREATE TABLE notifications (
    id         BIGSERIAL   PRIMARY KEY,
    order_id   UUID        NOT NULL REFERENCES orders (id),
    recipient  TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    subject    TEXT        NOT NULL,
    body       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- One confirmation per order, however often `order.paid` arrives.
    CONSTRAINT notifications_once_per_kind UNIQUE (order_id, kind)
);
