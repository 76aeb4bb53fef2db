-- Label deadlines (a request without a label is sent again, then the order is held), rules that
-- may name a carrier registered later through the API, and the cancellation arbiter's record.

-- A rule may name a carrier that is registered later (`PUT /v1/carriers/{code}`); until then it
-- matches nothing. Matching joins the registry, so every replica sees a new carrier at once.
ALTER TABLE shipping_rules DROP CONSTRAINT IF EXISTS shipping_rules_carrier_fkey;

ALTER TABLE shipments
    -- The request as sent, so it can be sent again unchanged (same idempotency key).
    ADD COLUMN request             JSONB,
    ADD COLUMN correlation_id      UUID,
    ADD COLUMN request_message_id  UUID,
    -- Requests sent so far (the first one included).
    ADD COLUMN label_attempts      INTEGER NOT NULL DEFAULT 1 CHECK (label_attempts >= 1),
    -- When the label is due; NULL for carriers shipping handles itself (pickup).
    ADD COLUMN label_due_at        TIMESTAMPTZ,
    -- Set when the last attempt expired without a label and the order was held.
    ADD COLUMN label_given_up_at   TIMESTAMPTZ;

-- What the label-deadline worker scans: open requests by due time.
CREATE INDEX shipments_label_due ON shipments (label_due_at)
    WHERE status = 'requested' AND label_given_up_at IS NULL;

ALTER TABLE shipping_orders
    -- `order.on_hold` for a missing label is published once per order.
    ADD COLUMN label_hold_published_at TIMESTAMPTZ,
    -- Why the order was cancelled (the arbiter's decision, `order.cancelled`).
    ADD COLUMN cancel_reason           TEXT;
