-- A province acts only on what it owns (review 2026-12-07, C1–H3).

-- A message from another province that can never be applied is set aside with its reason
-- (kept, listed, counted) and the inbox moves past it; one that cannot be applied yet waits
-- before its next attempt, and holds back only the later messages of its own transfer.
ALTER TABLE transfers.inbox
    ADD COLUMN set_aside_at    timestamptz,
    ADD COLUMN next_attempt_at timestamptz;

DROP INDEX transfers.inbox_pending;
CREATE INDEX inbox_pending ON transfers.inbox (id)
    WHERE applied_at IS NULL AND set_aside_at IS NULL;
CREATE INDEX inbox_pending_by_transfer ON transfers.inbox (transfer_id, id)
    WHERE applied_at IS NULL AND set_aside_at IS NULL;
CREATE INDEX inbox_set_aside ON transfers.inbox (id) WHERE set_aside_at IS NOT NULL;

-- A message the national relay refused (not this transfer's pair, a direction its kind does
-- not allow, a record the sender does not own): kept with the relay's reason, not sent again.
ALTER TABLE transfers.outbox
    ADD COLUMN refused_reason text;
