-- Transfers between provinces. Each of the two provinces keeps a row for the transfer (same
-- id): the receiving province's coordinates, the sending province's holds the sending-side
-- steps. The province whose party holds the open step changes the task and sends it over.

-- both: a transfer inside this province; receiving / sending: this province's side of a
-- transfer between provinces.
ALTER TABLE transfers.transfers
    ADD COLUMN role text NOT NULL DEFAULT 'both' CHECK (role IN ('both', 'receiving', 'sending')),
    -- The other province of a transfer between provinces (NULL while the owner is unknown).
    ADD COLUMN other_province text,
    -- Grows with every change of the task; an update from the other side applies only when
    -- newer.
    ADD COLUMN version bigint NOT NULL DEFAULT 0,
    -- A `starting` transfer whose hold was asked of another province: the answer comes as a
    -- message, so the start is not taken over by the sweeper.
    ADD COLUMN awaiting_hold boolean NOT NULL DEFAULT false;

ALTER TABLE transfers.effects DROP CONSTRAINT effects_kind_check;
-- transfer_out: the sending side closes the enrollment and sends the record over.
ALTER TABLE transfers.effects ADD CONSTRAINT effects_kind_check
    CHECK (kind IN ('complete', 'release', 'transfer_out'));

-- Messages to other provinces (through the national node), written in the transaction of the
-- change they report; delivered in id order (per transfer, writers serialise on its row).
CREATE TABLE transfers.outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  uuid   NOT NULL UNIQUE,
    transfer_id uuid   NOT NULL,
    -- Two digits; '' for "the province owning the student" (the national node resolves it).
    to_province text   NOT NULL,
    -- The encoded xueji.transfers.v1.SagaMessage.
    body        bytea  NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);

CREATE INDEX outbox_pending ON transfers.outbox (id) WHERE sent_at IS NULL;

-- Messages from other provinces, each taken once (message_id), applied in the order taken.
CREATE TABLE transfers.inbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    uuid   NOT NULL UNIQUE,
    transfer_id   uuid   NOT NULL,
    from_province text   NOT NULL,
    body          bytea  NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    applied_at    timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text
);

CREATE INDEX inbox_pending ON transfers.inbox (id) WHERE applied_at IS NULL;
