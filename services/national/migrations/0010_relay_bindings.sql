-- The relay binds each transfer between provinces to its two provinces (review 2026-12-07,
-- C1/C2/M4): when it routes the hold request it records the receiving province (the sender of
-- the request) and the sending province (the index's owner of the student). From then on a
-- message about the transfer is relayed only between those two, in the directions its kind
-- allows; a record moved only for the number the sending province's hold answered.
CREATE TABLE national.relay_bindings (
    transfer_id     uuid PRIMARY KEY,
    receiving       text NOT NULL CHECK (receiving ~ '^[0-9]{2}$'),
    sending         text NOT NULL CHECK (sending ~ '^[0-9]{2}$'),
    -- The registry number the sending province's hold answered (NULL until it answered).
    registry_number text,
    bound_at        timestamptz NOT NULL DEFAULT now()
);

-- Message ids are derived by the sender from what the message reports: one province cannot
-- use up another's ids, since a message is the same message only from the same sender.
ALTER TABLE national.relay DROP CONSTRAINT relay_message_id_key;
ALTER TABLE national.relay ADD CONSTRAINT relay_sender_message UNIQUE (from_province, message_id);
