-- Round 2: who owns an order, what the stages told us about it, and the history's causes.

-- The name of the shop key that placed the order (`shop:acme:KEY` → `acme`); NULL for keys
-- without a name and for staff. A shop key sees only orders with its own name.
ALTER TABLE orders ADD COLUMN shop TEXT;
-- From `order.invoiced`.
ALTER TABLE orders ADD COLUMN invoice_number TEXT;
-- From the `payment.*` events and `order.paid`: pending, authorized, failed, captured, voided,
-- refunded. Moved only forward by journey.rs (a late `payment.authorized` never hides a refund).
ALTER TABLE orders ADD COLUMN payment_state TEXT NOT NULL DEFAULT 'pending' CHECK (payment_state IN (
    'pending', 'authorized', 'failed', 'captured', 'voided', 'refunded'));
CREATE INDEX orders_by_shop ON orders (shop, created_at DESC, id DESC);
CREATE INDEX orders_by_email ON orders (customer_email, created_at DESC, id DESC);

-- The shipments of `order.shipped`, with their tracking.
CREATE TABLE order_shipments (
    order_id        UUID        NOT NULL REFERENCES orders (id),
    shipment_id     UUID        NOT NULL,
    carrier         TEXT        NOT NULL,
    tracking_number TEXT        NOT NULL,
    tracking_url    TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, shipment_id)
);

-- The cause of each entry (the message that led to it) and the person or key who asked.
ALTER TABLE timeline ADD COLUMN causation_id UUID;
ALTER TABLE timeline ADD COLUMN requested_by TEXT;

-- A replay answers with exactly what the first request got. Keys older than the configured
-- lifetime are taken as new.
ALTER TABLE idempotency_keys ADD COLUMN response_status INTEGER;
ALTER TABLE idempotency_keys ADD COLUMN response_body JSONB;

-- Shops' subscriptions to their orders' status changes.
CREATE TABLE webhooks (
    id         UUID        PRIMARY KEY,
    -- The subscribing key's name; NULL for a key without one (it hears orders without a shop).
    shop       TEXT,
    url        TEXT        NOT NULL,
    -- Signs each delivery (HMAC-SHA256 of the body); never shown again after creation.
    secret     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_of_shop ON webhooks (shop);

-- Every notification about a status change, to each sink, until delivered or given up: the
-- delivery log of an order, and the work queue of the delivery worker (replicas take rows with
-- FOR UPDATE SKIP LOCKED).
CREATE TABLE deliveries (
    id              BIGSERIAL   PRIMARY KEY,
    order_id        UUID        NOT NULL REFERENCES orders (id),
    sink            TEXT        NOT NULL CHECK (sink IN ('log', 'webhook')),
    webhook_id      UUID        REFERENCES webhooks (id) ON DELETE SET NULL,
    url             TEXT,
    -- The message whose status change this announces: one delivery per sink and message.
    message_id      UUID        NOT NULL,
    body            JSONB       NOT NULL,
    state           TEXT        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX deliveries_once ON deliveries (message_id, sink, COALESCE(webhook_id::text, ''));
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_of_order ON deliveries (order_id, id);

-- Customers' ratings, one per order.
CREATE TABLE feedback (
    order_id   UUID        PRIMARY KEY REFERENCES orders (id),
    rating     SMALLINT    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX feedback_by_time ON feedback (created_at);
