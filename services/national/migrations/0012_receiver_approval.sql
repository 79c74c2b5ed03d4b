-- A record moves only after the receiving province approved: the relay notes when it relays
-- the receiving province's task update in state `approved` (its decisions signed by it), and
-- refuses a `record_moved` before then, so the sending province cannot hand a student to
-- another province, moving the index's owner, without that province's consent.
ALTER TABLE national.relay_bindings ADD COLUMN receiver_approved_at timestamptz;
