-- One row per order fulfilment knows about.
CREATE TABLE orders (
    order_id    UUID PRIMARY KEY,
    status      TEXT        NOT NULL CHECK (status IN ('picking', 'packed', 'cancelled')),
    verified    JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One pick list per warehouse that serves the order.
CREATE TABLE pick_lists (
    id          UUID PRIMARY KEY,
    order_id    UUID        NOT NULL REFERENCES orders (order_id),
    warehouse   TEXT        NOT NULL,
    status      TEXT        NOT NULL CHECK (status IN ('open', 'picked', 'packed', 'cancelled')),
    lines       JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (order_id, warehouse)
);

CREATE TABLE parcels (
    id            UUID PRIMARY KEY,
    pick_list_id  UUID        NOT NULL REFERENCES pick_lists (id),
    weight_grams  INTEGER     NOT NULL CHECK (weight_grams >= 0),
    dimensions    JSONB       NOT NULL,
    lines         JSONB       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
