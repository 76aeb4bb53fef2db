-- Coupons (billing owns them), payment methods beyond the card, received payments, reminders,
-- re-authorisation after a decline, cancellation, refunds and credit notes.

CREATE TABLE coupons (
    code           TEXT        PRIMARY KEY,
    -- `percent`: `percent` off; `fixed`: `amount` minor units of `currency` off.
    kind           TEXT        NOT NULL CHECK (kind IN ('percent', 'fixed')),
    percent        NUMERIC     CHECK (percent > 0 AND percent <= 100),
    amount         BIGINT      CHECK (amount > 0),
    currency       TEXT,
    -- Empty: the whole order's products; otherwise only lines of these SKUs.
    skus           TEXT[]      NOT NULL DEFAULT '{}',
    active         BOOLEAN     NOT NULL,
    valid_from     TIMESTAMPTZ,
    valid_until    TIMESTAMPTZ,
    -- The products' subtotal the order must reach, in `currency`.
    minimum_amount BIGINT      CHECK (minimum_amount >= 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'percent') = (percent IS NOT NULL)),
    CHECK ((kind = 'fixed') = (amount IS NOT NULL)),
    CHECK (currency IS NOT NULL OR (amount IS NULL AND minimum_amount IS NULL))
);

ALTER TABLE billing_orders
    ADD COLUMN coupon_code      TEXT,
    -- Why the order's coupon was not applied (it proceeds without the discount).
    ADD COLUMN coupon_refused   TEXT,
    -- Incremented by each order.payment_method_changed; the payment attempt to make.
    ADD COLUMN payment_revision INTEGER     NOT NULL DEFAULT 0,
    -- Set once billing asked to cancel an order whose hold was not resolved in time.
    ADD COLUMN hold_cancel_requested_at TIMESTAMPTZ;

-- Discount lines carry negative amounts (and negative tax).
ALTER TABLE draft_lines DROP CONSTRAINT draft_lines_kind_check;
ALTER TABLE draft_lines ADD CONSTRAINT draft_lines_kind_check
    CHECK (kind IN ('product', 'shipping', 'discount'));
ALTER TABLE draft_lines DROP CONSTRAINT draft_lines_unit_price_check;
ALTER TABLE draft_lines DROP CONSTRAINT draft_lines_tax_check;

ALTER TABLE milestones DROP CONSTRAINT milestones_milestone_check;
ALTER TABLE milestones ADD CONSTRAINT milestones_milestone_check
    CHECK (milestone IN ('shipped', 'delivered', 'cancel_requested', 'delivery_failed', 'cancelled'));

-- A payment per attempt: a declined one is followed by another once the method changes.
ALTER TABLE payments DROP CONSTRAINT payments_order_id_key;
ALTER TABLE payments ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD CONSTRAINT payments_order_attempt UNIQUE (order_id, attempt);
ALTER TABLE payments ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0);
-- For prepaid payments, the shop's reference; for reconciliation.
CREATE INDEX payments_by_reference ON payments (authorization_reference);

-- Invoices and credit notes share one table (and one view, print and export); credit notes
-- have their own series and name the invoice they correct. Amounts are stored positive.
ALTER TABLE invoices ADD COLUMN kind TEXT NOT NULL DEFAULT 'invoice'
    CHECK (kind IN ('invoice', 'credit_note'));
ALTER TABLE invoices ADD COLUMN corrects TEXT REFERENCES invoices (invoice_number);
ALTER TABLE invoices ADD COLUMN reason TEXT;
ALTER TABLE invoices ADD COLUMN payment_method TEXT;
-- Invoices paid by transfer: when the money is due (issued_at + billing.invoice_due_days).
ALTER TABLE invoices ADD COLUMN due_at TIMESTAMPTZ;
ALTER TABLE invoices ADD COLUMN notes TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE invoices DROP CONSTRAINT invoices_order_id_key;
CREATE UNIQUE INDEX invoices_one_per_order ON invoices (order_id) WHERE kind = 'invoice';
CREATE INDEX invoices_by_issue ON invoices (issued_at);
ALTER TABLE invoices ADD CONSTRAINT credit_notes_correct_an_invoice
    CHECK ((kind = 'credit_note') = (corrects IS NOT NULL));

ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_kind_check;
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_kind_check
    CHECK (kind IN ('product', 'shipping', 'discount'));
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_unit_price_check;
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_tax_check;
-- On a credit note: the invoice line it gives back (part of).
ALTER TABLE invoice_lines ADD COLUMN corrects_position INTEGER;

-- Money received against an invoice (bank transfer): partial payments add up.
CREATE TABLE received_payments (
    received_id    UUID        PRIMARY KEY,
    invoice_number TEXT        NOT NULL REFERENCES invoices (invoice_number),
    amount         BIGINT      NOT NULL CHECK (amount > 0),
    currency       TEXT        NOT NULL,
    reference      TEXT        NOT NULL,
    received_on    DATE        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The bank's reference is recorded once: a statement imported twice adds nothing.
    UNIQUE (invoice_number, reference)
);

-- Reminders for overdue invoices; the key makes each level happen once across replicas.
CREATE TABLE payment_reminders (
    invoice_number TEXT        NOT NULL REFERENCES invoices (invoice_number),
    level          INTEGER     NOT NULL CHECK (level > 0),
    outstanding    BIGINT      NOT NULL CHECK (outstanding > 0),
    currency       TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_number, level)
);

-- Cancelled-after-capture orders are now refunded at once, with a credit note.
DROP TABLE refund_requests;
