-- Orders as billing learnt them from order.verified, with the totals of the priced draft.
CREATE TABLE billing_orders (
    order_id            UUID        PRIMARY KEY,
    correlation_id      UUID        NOT NULL,
    verified_message_id UUID        NOT NULL,
    currency            TEXT        NOT NULL,
    -- The destination, whose tax rates apply.
    country             TEXT        NOT NULL,
    payment_method      TEXT        NOT NULL,
    -- A provider's card token (never a card number), kept to repeat an authorisation whose
    -- outcome was unknown with the same idempotency key. Never logged.
    payment_token       TEXT,
    shipping_method     TEXT        NOT NULL,
    customer_email      TEXT        NOT NULL,
    customer_name       TEXT        NOT NULL,
    billing_address     JSONB       NOT NULL,
    shipping_address    JSONB       NOT NULL,
    net                 BIGINT      NOT NULL CHECK (net >= 0),
    tax                 BIGINT      NOT NULL CHECK (tax >= 0),
    gross               BIGINT      NOT NULL CHECK (gross = net + tax),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The priced draft: product lines and one shipping line. The invoice copies these.
CREATE TABLE draft_lines (
    order_id    UUID        NOT NULL REFERENCES billing_orders (order_id),
    position    INTEGER     NOT NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('product', 'shipping')),
    sku         TEXT,
    description TEXT        NOT NULL,
    quantity    BIGINT      NOT NULL CHECK (quantity > 0),
    unit_price  BIGINT      NOT NULL CHECK (unit_price >= 0),
    tax_class   TEXT        NOT NULL,
    tax_rate    NUMERIC     NOT NULL CHECK (tax_rate >= 0 AND tax_rate <= 1),
    net         BIGINT      NOT NULL,
    tax         BIGINT      NOT NULL CHECK (tax >= 0),
    gross       BIGINT      NOT NULL CHECK (gross = net + tax),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, position)
);

-- What billing heard about the order's journey, possibly before the order itself.
CREATE TABLE milestones (
    order_id    UUID        NOT NULL,
    milestone   TEXT        NOT NULL
                CHECK (milestone IN ('shipped', 'delivered', 'cancel_requested', 'delivery_failed')),
    message_id  UUID        NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    detail      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, milestone)
);

-- One payment per order; see payment.rs for the state machine.
CREATE TABLE payments (
    payment_id              UUID        PRIMARY KEY,
    order_id                UUID        NOT NULL UNIQUE REFERENCES billing_orders (order_id),
    method                  TEXT        NOT NULL,
    amount                  BIGINT      NOT NULL CHECK (amount >= 0),
    currency                TEXT        NOT NULL,
    status                  TEXT        NOT NULL CHECK (status IN (
                                'authorization_pending', 'authorized', 'failed',
                                'capture_pending', 'captured', 'capture_failed',
                                'void_pending', 'voided', 'void_failed')),
    provider                TEXT        NOT NULL,
    authorization_reference TEXT,
    settlement_reference    TEXT,
    failure_code            TEXT,
    failure_message         TEXT,
    -- The message that started the operation now pending: the causation of what follows.
    pending_cause           UUID,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_pending ON payments (updated_at)
    WHERE status IN ('authorization_pending', 'capture_pending', 'void_pending');

-- Money captured for an order that was then cancelled; paying it back comes with credit notes.
CREATE TABLE refund_requests (
    payment_id UUID        PRIMARY KEY REFERENCES payments (payment_id),
    order_id   UUID        NOT NULL,
    amount     BIGINT      NOT NULL CHECK (amount >= 0),
    currency   TEXT        NOT NULL,
    reason     TEXT        NOT NULL,
    status     TEXT        NOT NULL DEFAULT 'requested' CHECK (status IN ('requested')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The last invoice number per series and year. Incremented in the transaction that issues the
-- invoice, so a rolled-back issue gives its number back: no gaps.
CREATE TABLE invoice_counters (
    series      TEXT        NOT NULL,
    year        INTEGER     NOT NULL,
    last_number BIGINT      NOT NULL CHECK (last_number > 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (series, year)
);

CREATE TABLE invoices (
    invoice_number  TEXT        PRIMARY KEY,
    series          TEXT        NOT NULL,
    year            INTEGER     NOT NULL,
    number          BIGINT      NOT NULL CHECK (number > 0),
    order_id        UUID        NOT NULL UNIQUE REFERENCES billing_orders (order_id),
    currency        TEXT        NOT NULL,
    customer_email  TEXT        NOT NULL,
    customer_name   TEXT        NOT NULL,
    billing_address JSONB       NOT NULL,
    net             BIGINT      NOT NULL CHECK (net >= 0),
    tax             BIGINT      NOT NULL CHECK (tax >= 0),
    gross           BIGINT      NOT NULL CHECK (gross = net + tax),
    issued_at       TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (series, year, number)
);

CREATE TABLE invoice_lines (
    invoice_number TEXT        NOT NULL REFERENCES invoices (invoice_number),
    position       INTEGER     NOT NULL,
    kind           TEXT        NOT NULL CHECK (kind IN ('product', 'shipping')),
    sku            TEXT,
    description    TEXT        NOT NULL,
    quantity       BIGINT      NOT NULL CHECK (quantity > 0),
    unit_price     BIGINT      NOT NULL CHECK (unit_price >= 0),
    tax_class      TEXT        NOT NULL,
    tax_rate       NUMERIC     NOT NULL CHECK (tax_rate >= 0 AND tax_rate <= 1),
    net            BIGINT      NOT NULL,
    tax            BIGINT      NOT NULL CHECK (tax >= 0),
    gross          BIGINT      NOT NULL CHECK (gross = net + tax),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_number, position)
);

-- An issued invoice is a legal document: corrections are credit notes, never edits.
CREATE FUNCTION refuse_invoice_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'issued invoices cannot be changed or deleted (table %)', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER invoices_are_immutable BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION refuse_invoice_change();
CREATE TRIGGER invoice_lines_are_immutable BEFORE UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION refuse_invoice_change();
