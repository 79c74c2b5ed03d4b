-- The W3C trace context of the request that started the transfer: every message of the
-- transfer carries it, so one trace follows the transfer across the nodes.
ALTER TABLE transfers.transfers ADD COLUMN traceparent text NOT NULL DEFAULT '';
