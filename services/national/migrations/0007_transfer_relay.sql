-- The relay of cross-province transfer messages: each message taken once (message_id), kept
-- until forwarded to its province, forwarded in the order taken.
CREATE TABLE national.relay (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    uuid   NOT NULL UNIQUE,
    transfer_id   uuid   NOT NULL,
    from_province text   NOT NULL,
    to_province   text   NOT NULL,
    -- The encoded xueji.transfers.v1.SagaMessage, as forwarded.
    body          bytea  NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    forwarded_at  timestamptz
);

CREATE INDEX relay_pending ON national.relay (to_province, seq) WHERE forwarded_at IS NULL;
