-- Delivery marked by a watermark instead of by rewriting every delivered row. Marking each row
-- cost an UPDATE per message (a second copy of the row in the table and in the WAL, and the
-- partial index of undelivered rows to keep), paid by every registration.
--
-- Messages are delivered in (xid, sequence) order, xid being the writing transaction's id, and a
-- delivery only takes messages of transactions older than every transaction still running
-- (pg_snapshot_xmin): those have finished, so no message can later appear behind the watermark.
-- Sequence order alone would not do: sequences are drawn before commit, so a message with a
-- smaller sequence can become visible after a larger one was delivered. A change made after
-- another has committed always has the larger xid, so per student the order stays causal.
--
-- Only answers that mean something beyond "applied" (the national check's answer to a claim)
-- are kept, in outbox_outcomes.

CREATE TABLE identity.outbox_watermark (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_xid      xid8    NOT NULL,
    last_sequence bigint  NOT NULL
);

CREATE TABLE identity.outbox_outcomes (
    sequence bigint PRIMARY KEY,
    outcome  jsonb  NOT NULL
);

INSERT INTO identity.outbox_outcomes (sequence, outcome)
SELECT sequence, outcome FROM identity.outbox
WHERE outcome IS NOT NULL AND outcome->>'outcome' <> 'applied';

-- Delivered messages sort before everything else (xid 1 is below every real transaction id);
-- undelivered ones wait under this migration's own xid.
ALTER TABLE identity.outbox ADD COLUMN xid xid8;
UPDATE identity.outbox
SET xid = CASE WHEN delivered_at IS NULL THEN pg_current_xact_id() ELSE '1' END;
INSERT INTO identity.outbox_watermark (last_xid, last_sequence)
SELECT '1', coalesce(max(sequence) FILTER (WHERE delivered_at IS NOT NULL), 0)
FROM identity.outbox;
ALTER TABLE identity.outbox
    ALTER COLUMN xid SET DEFAULT pg_current_xact_id(),
    ALTER COLUMN xid SET NOT NULL;

ALTER TABLE identity.outbox DROP COLUMN delivered_at, DROP COLUMN outcome;
CREATE INDEX outbox_delivery_order ON identity.outbox (xid, sequence);
