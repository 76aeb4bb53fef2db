-- Customers, product customisations, backorders, unpacked goods and the low-stock mark.

-- Known customers. Guests have no row; an order naming a customer id is checked against it.
CREATE TABLE customers (
    customer_id     TEXT COLLATE "C" PRIMARY KEY CHECK (customer_id <> ''),
    name            TEXT        NOT NULL CHECK (name <> ''),
    email           TEXT        NOT NULL CHECK (email <> ''),
    -- [{"name", "line1", "line2"?, "postal_code", "city", "country", "phone"?}]
    addresses       JSONB       NOT NULL DEFAULT '[]',
    blocked         BOOLEAN     NOT NULL DEFAULT false,
    blocked_reason  TEXT,
    -- The payment methods this customer may use; NULL: every method.
    payment_methods TEXT[],
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT customers_blocked_with_reason CHECK (NOT blocked OR blocked_reason IS NOT NULL)
);

-- The customisations a product accepts (`engraving`, `gift_wrap`, …); an order line may only
-- ask for these.
ALTER TABLE products ADD COLUMN customisation_options TEXT[] NOT NULL DEFAULT '{}';

-- Backorders: an order waits for stock (`backordered`), and after a while a person decides
-- (`on_hold`). `cause` is the message that started the wait (order.placed, or the
-- order.fulfilment_failed of a short pick), kept to re-verify the order and to correlate what
-- follows. `backorder` lists the lines short of stock; `short_warehouse` is set when the wait
-- is for the missing units of a short pick of an order verified earlier.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'verified', 'rejected', 'cancelled', 'shipped', 'returned', 'unpacked', 'backordered',
    'on_hold'));
ALTER TABLE orders
    ADD COLUMN cause           JSONB,
    ADD COLUMN backorder       JSONB,
    ADD COLUMN short_warehouse TEXT COLLATE "C",
    ADD COLUMN backordered_at  TIMESTAMPTZ,
    ADD CONSTRAINT orders_backorder_complete CHECK (
        status NOT IN ('backordered', 'on_hold')
        OR (cause IS NOT NULL AND backorder IS NOT NULL AND backordered_at IS NOT NULL));
CREATE INDEX orders_waiting_for_stock ON orders (backordered_at, order_id)
    WHERE status IN ('backordered', 'on_hold');

-- A cancelled order's packed goods put back on the shelf.
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('reserved', 'released', 'shipped', 'returned', 'unpacked'));

-- Set while the row's available stock is at or below its product's reorder point: `stock.low`
-- is published when it gets set, so once per crossing.
ALTER TABLE stock ADD COLUMN low_since TIMESTAMPTZ;
