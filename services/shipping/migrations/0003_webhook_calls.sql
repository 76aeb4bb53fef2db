-- Carrier webhook calls already accepted, by the message id derived from (carrier, event id):
-- a retried call is answered as a duplicate and not handled again.
CREATE TABLE webhook_calls (
    message_id  UUID PRIMARY KEY,
    carrier     TEXT        NOT NULL,
    event_id    TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
