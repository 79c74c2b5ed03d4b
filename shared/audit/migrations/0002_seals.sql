-- Sealing without rewriting entries. Sealing used to UPDATE every entry with its position and
-- hashes: a second full copy of each entry (its before/after documents included) in the table and
-- in the WAL, and two index entries more. Entries are now written once and never touched; the
-- sealer appends one row per round to audit.seals naming the entries it chained, in order, with
-- their hashes.
--
-- Which entries are sealed is a watermark, not a flag: entries are chained in (xid, id) order,
-- where xid is the writing transaction's id, and the sealer only takes entries whose transaction
-- is older than every transaction still running (pg_snapshot_xmin). Such a transaction has
-- finished: its entries are all visible, or it aborted. A transaction still running, or not yet
-- started, has a larger xid, so nothing can later appear behind the watermark.

CREATE TABLE audit.seals (
    -- The chain position of the first entry this round sealed; the rest follow in order.
    first_seq  bigint   PRIMARY KEY,
    -- The chain hash before this round: the previous round's last hash (zeros for the first).
    prev_hash  bytea    NOT NULL,
    entry_ids  bigint[] NOT NULL,
    hashes     bytea[]  NOT NULL,
    sealed_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(entry_ids) > 0 AND cardinality(entry_ids) = cardinality(hashes))
);

-- A round's arrays run to tens of kilobytes; hashes do not compress, so do not try.
ALTER TABLE audit.seals
    ALTER COLUMN entry_ids SET STORAGE EXTERNAL,
    ALTER COLUMN hashes SET STORAGE EXTERNAL;

ALTER TABLE audit.chain_head
    ADD COLUMN last_xid xid8   NOT NULL DEFAULT '0',
    ADD COLUMN last_id  bigint NOT NULL DEFAULT 0;

-- Entries sealed the old way become the first round, in their chain order.
INSERT INTO audit.seals (first_seq, prev_hash, entry_ids, hashes)
SELECT 1, (SELECT prev_hash FROM audit.entries WHERE seq = 1),
       array_agg(id ORDER BY seq), array_agg(hash ORDER BY seq)
FROM audit.entries WHERE seq IS NOT NULL
HAVING count(*) > 0;

-- Those sort before any other entry (xid 1 is below every real transaction id); the unsealed
-- ones wait for the sealer under this migration's own xid.
ALTER TABLE audit.entries ADD COLUMN xid xid8;
UPDATE audit.entries SET xid = CASE WHEN seq IS NULL THEN pg_current_xact_id() ELSE '1' END;
UPDATE audit.chain_head
SET last_xid = '1', last_id = coalesce((SELECT max(id) FROM audit.entries WHERE seq IS NOT NULL), 0);
ALTER TABLE audit.entries
    ALTER COLUMN xid SET DEFAULT pg_current_xact_id(),
    ALTER COLUMN xid SET NOT NULL;

ALTER TABLE audit.entries DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash;
CREATE INDEX entries_chain_order ON audit.entries (xid, id);

-- Every sealed entry with its chain position and hash: what operators and verify read.
CREATE VIEW audit.chain AS
SELECT s.first_seq + c.n - 1 AS seq, c.entry_id, c.hash
FROM audit.seals s,
     unnest(s.entry_ids, s.hashes) WITH ORDINALITY AS c(entry_id, hash, n);

-- Batch statements insert their entries into audit.entries directly, in a CTE: passing the
-- batch through this function's arrays cost more than the insert itself.
DROP FUNCTION audit.record_many(text[], text[], text, text[], jsonb[], text[]);
