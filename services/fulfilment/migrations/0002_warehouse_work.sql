-- Warehouse work: pick lists that are picked (possibly short), customisation tasks, parcels closed
-- one by one, warehouses in automatic or manual mode, and cancellation that may arrive first.

-- An order may be known only from its cancellation (then `verified` stays empty and a later
-- order.verified packs nothing). `short`: a pick found less than reserved and the order waits for
-- verification to reallocate. `unpacked`: cancelled after order.packed; the parcels were unpacked.
ALTER TABLE orders ALTER COLUMN verified DROP NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('picking', 'short', 'packed', 'cancelled', 'unpacked'));
-- Events published later (by staff or the simulated warehouse) continue the order's journey.
ALTER TABLE orders ADD COLUMN correlation_id UUID;
ALTER TABLE orders ADD COLUMN verified_message_id UUID;
-- What order.packed announced, so order.unpacked can name the same parcels.
ALTER TABLE orders ADD COLUMN packed_groups JSONB;
ALTER TABLE orders ADD COLUMN cancel_reason TEXT;

-- A reallocation may send more goods from a warehouse that already has a pick list for the order.
ALTER TABLE pick_lists DROP CONSTRAINT pick_lists_order_id_warehouse_key;
ALTER TABLE pick_lists DROP CONSTRAINT pick_lists_status_check;
ALTER TABLE pick_lists ADD CONSTRAINT pick_lists_status_check
    CHECK (status IN ('open', 'picked', 'packed', 'short', 'cancelled'));
-- Round 1 kept a copy of the parcels here; the parcels table holds them.
ALTER TABLE pick_lists DROP COLUMN lines;
-- What to pick: [{line_no, sku, name, quantity, picked, weight_grams, dimensions, customisations}].
ALTER TABLE pick_lists ADD COLUMN lines JSONB NOT NULL DEFAULT '[]';
ALTER TABLE pick_lists ADD COLUMN mode TEXT NOT NULL DEFAULT 'automatic'
    CHECK (mode IN ('automatic', 'manual'));
-- A pick came up short here and verification has not reallocated the missing units yet.
ALTER TABLE pick_lists ADD COLUMN awaiting_reallocation BOOLEAN NOT NULL DEFAULT false;
-- When the simulated warehouse takes the next step (automatic mode only).
ALTER TABLE pick_lists ADD COLUMN due_at TIMESTAMPTZ;
CREATE INDEX pick_lists_due ON pick_lists (due_at)
    WHERE mode = 'automatic' AND status IN ('open', 'picked');
CREATE INDEX pick_lists_open_by_warehouse ON pick_lists (warehouse, created_at)
    WHERE status IN ('open', 'picked');
CREATE INDEX pick_lists_by_order ON pick_lists (order_id);

ALTER TABLE parcels ADD COLUMN status TEXT NOT NULL DEFAULT 'closed'
    CHECK (status IN ('closed', 'unpacked'));
CREATE INDEX parcels_by_pick_list ON parcels (pick_list_id);

-- One task per customisation of a line (engraving, gift wrap, assembly, …); packing waits for it.
CREATE TABLE tasks (
    id             UUID PRIMARY KEY,
    pick_list_id   UUID        NOT NULL REFERENCES pick_lists (id),
    order_id       UUID        NOT NULL,
    warehouse      TEXT        NOT NULL,
    line_no        INTEGER     NOT NULL CHECK (line_no > 0),
    sku            TEXT        NOT NULL,
    customisation  TEXT        NOT NULL,
    status         TEXT        NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
    completed_by   TEXT,
    completed_at   TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tasks_by_pick_list ON tasks (pick_list_id);
CREATE INDEX tasks_open_by_warehouse ON tasks (warehouse, created_at) WHERE status = 'open';

-- Modes set through the admin API; they win over the settings.
CREATE TABLE warehouse_modes (
    warehouse   TEXT PRIMARY KEY,
    mode        TEXT        NOT NULL CHECK (mode IN ('automatic', 'manual')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
