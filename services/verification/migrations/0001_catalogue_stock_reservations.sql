-- Verification's records: the catalogue, warehouses and their stock, the stock ledger, and what
-- was decided for each order (its reservations).
--
-- Codes and SKUs use the "C" collation so that the database sorts them byte-wise, exactly as the
-- service does in memory: stock rows are always locked in (warehouse, sku) order, and both sides
-- must agree on that order for it to prevent deadlocks.

CREATE TABLE products (
    sku              TEXT COLLATE "C" PRIMARY KEY,
    name             TEXT        NOT NULL CHECK (name <> ''),
    unit_price       BIGINT      NOT NULL CONSTRAINT products_unit_price_positive CHECK (unit_price > 0),
    currency         TEXT        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    tax_class        TEXT        NOT NULL CHECK (tax_class IN ('standard', 'reduced', 'zero')),
    weight_grams     INTEGER     NOT NULL CHECK (weight_grams >= 0),
    length_mm        INTEGER     CHECK (length_mm > 0),
    width_mm         INTEGER     CHECK (width_mm > 0),
    height_mm        INTEGER     CHECK (height_mm > 0),
    active           BOOLEAN     NOT NULL DEFAULT true,
    allow_backorder  BOOLEAN     NOT NULL DEFAULT false,
    reorder_point    BIGINT      NOT NULL DEFAULT 0 CHECK (reorder_point >= 0),
    reorder_quantity BIGINT      NOT NULL DEFAULT 0 CHECK (reorder_quantity >= 0),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A product has all three dimensions or none.
    CONSTRAINT products_dimensions_complete CHECK (
        (length_mm IS NULL) = (width_mm IS NULL) AND (width_mm IS NULL) = (height_mm IS NULL)
    )
);

CREATE TABLE warehouses (
    code       TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT        NOT NULL CHECK (name <> ''),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What each warehouse holds of each SKU. `reserved` is promised to verified orders that have not
-- left the shelf yet; `on_hand - reserved` is what new orders may take.
CREATE TABLE stock (
    warehouse  TEXT COLLATE "C" NOT NULL REFERENCES warehouses (code),
    sku        TEXT COLLATE "C" NOT NULL REFERENCES products (sku),
    on_hand    BIGINT      NOT NULL DEFAULT 0,
    reserved   BIGINT      NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse, sku),
    CONSTRAINT stock_on_hand_not_negative CHECK (on_hand >= 0),
    CONSTRAINT stock_reserved_not_negative CHECK (reserved >= 0),
    CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand)
);
CREATE INDEX stock_by_sku ON stock (sku, warehouse);

-- Every change of a stock row, with why: receipts, adjustments, reservations and their ends.
CREATE TABLE stock_movements (
    id             BIGSERIAL PRIMARY KEY,
    warehouse      TEXT COLLATE "C" NOT NULL,
    sku            TEXT COLLATE "C" NOT NULL,
    delta_on_hand  BIGINT      NOT NULL,
    delta_reserved BIGINT      NOT NULL,
    reason         TEXT        NOT NULL,
    order_id       UUID,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (warehouse, sku) REFERENCES stock (warehouse, sku)
);
CREATE INDEX stock_movements_by_stock ON stock_movements (warehouse, sku, id);
CREATE INDEX stock_movements_by_order ON stock_movements (order_id) WHERE order_id IS NOT NULL;

-- One row per order verification has decided about (or learnt was cancelled before it could
-- decide). Its primary key is what turns a second `order.placed` for the same order into a no-op.
CREATE TABLE orders (
    order_id   UUID PRIMARY KEY,
    status     TEXT        NOT NULL
        CHECK (status IN ('verified', 'rejected', 'cancelled', 'shipped', 'returned')),
    currency   TEXT,
    subtotal   BIGINT,
    -- Why it was rejected (the reasons of `order.rejected`).
    reasons    JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Stock held for one line of an order in one warehouse (a line split across warehouses has a row
-- per warehouse). reserved → released (cancelled) | shipped (packed) → returned (delivery failed).
CREATE TABLE reservations (
    order_id   UUID        NOT NULL REFERENCES orders (order_id),
    warehouse  TEXT COLLATE "C" NOT NULL,
    line_no    INTEGER     NOT NULL CHECK (line_no > 0),
    sku        TEXT COLLATE "C" NOT NULL,
    quantity   BIGINT      NOT NULL CHECK (quantity > 0),
    status     TEXT        NOT NULL DEFAULT 'reserved'
        CHECK (status IN ('reserved', 'released', 'shipped', 'returned')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, warehouse, line_no),
    FOREIGN KEY (warehouse, sku) REFERENCES stock (warehouse, sku)
);
