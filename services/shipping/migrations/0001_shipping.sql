-- Shipping's records: the carrier registry and shipping rules (seeded from settings at start),
-- the orders it ships, their shipments and every tracking event the carriers reported.

CREATE TABLE carriers (
    -- The routing key of the carrier's queue `carrier.<code>`: no dots or wildcards.
    code                  TEXT PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),
    name                  TEXT        NOT NULL,
    service_levels        TEXT[]      NOT NULL CHECK (cardinality(service_levels) > 0),
    -- `{tracking_number}` is replaced by the shipment's tracking number.
    tracking_url_template TEXT        NOT NULL,
    cash_on_delivery      BOOLEAN     NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Ordered: the rule with the lowest position that matches a parcel group wins.
CREATE TABLE shipping_rules (
    position         INTEGER PRIMARY KEY CHECK (position >= 0),
    shipping_method  TEXT        NOT NULL,
    -- NULL: any destination country.
    countries        TEXT[],
    -- NULL: any weight; otherwise the heaviest parcel of the group may weigh at most this.
    max_weight_grams INTEGER CHECK (max_weight_grams > 0),
    carrier          TEXT        NOT NULL REFERENCES carriers (code),
    service_level    TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per order shipping has heard of. The `*_published_at` columns guard the order-level
-- events so each is published once, whatever arrives twice or out of order.
CREATE TABLE shipping_orders (
    order_id                      UUID PRIMARY KEY,
    -- `on_hold`: no rule matched; `shipping`: shipments were requested; `cancelled`: a
    -- cancellation stopped shipments (or came before the order was packed).
    status                        TEXT        NOT NULL
        CHECK (status IN ('on_hold', 'shipping', 'cancelled')),
    shipping_method               TEXT,
    expected_shipments            INTEGER CHECK (expected_shipments > 0),
    hold_reason                   TEXT,
    shipped_published_at          TIMESTAMPTZ,
    delivered_published_at        TIMESTAMPTZ,
    delivery_failed_published_at  TIMESTAMPTZ,
    created_at                    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (status <> 'shipping' OR (expected_shipments IS NOT NULL AND shipping_method IS NOT NULL))
);

CREATE TABLE shipments (
    shipment_id      UUID PRIMARY KEY,
    order_id         UUID        NOT NULL REFERENCES shipping_orders (order_id),
    carrier          TEXT        NOT NULL REFERENCES carriers (code),
    service_level    TEXT        NOT NULL,
    warehouse        TEXT        NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN (
        'requested', 'label_created', 'pre_transit', 'in_transit', 'out_for_delivery',
        'available_for_pickup', 'delivered', 'return_to_sender', 'failure', 'cancelled')),
    -- The carrier's time of the tracking event that set `status`; NULL before the first one.
    status_at        TIMESTAMPTZ,
    tracking_number  TEXT,
    label_url        TEXT,
    parcels          JSONB       NOT NULL,
    ship_to          JSONB       NOT NULL,
    declared_value   BIGINT      NOT NULL CHECK (declared_value >= 0),
    cash_on_delivery BIGINT CHECK (cash_on_delivery >= 0),
    currency         TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- One shipment per warehouse and order: a repeated `order.packed` creates nothing new.
    CONSTRAINT shipments_one_per_warehouse UNIQUE (order_id, warehouse)
);

CREATE TABLE tracking_events (
    id              BIGSERIAL PRIMARY KEY,
    shipment_id     UUID        NOT NULL REFERENCES shipments (shipment_id),
    status          TEXT        NOT NULL,
    status_at       TIMESTAMPTZ NOT NULL,
    location        TEXT,
    description     TEXT,
    message_id      UUID        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A carrier repeating an event (under a new message id) records it once.
    CONSTRAINT tracking_events_once UNIQUE (shipment_id, status, status_at)
);
CREATE INDEX tracking_events_by_shipment ON tracking_events (shipment_id, status_at);
