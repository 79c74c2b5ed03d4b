-- National index minimisation (PIPL): the index keeps keyed digests (HMAC-SHA256 with the
-- national index key, which no province holds) of resident ID numbers and of the provinces' name
-- digests, never the values. The columns are renamed here; the values are re-keyed by the
-- national node when it starts with its key (`store::keying`), in the same transaction that
-- records the key's fingerprint in `index_keying`, so an index is either wholly keyed with one
-- key or not yet keyed at all.
ALTER TABLE national.students RENAME COLUMN id_number TO id_digest;
ALTER INDEX national.students_id_number RENAME TO students_id_digest;
ALTER TABLE national.id_claims RENAME COLUMN id_number TO id_digest;

-- The key the index is keyed with, by fingerprint (an HMAC of nothing: it tells keys apart and
-- reveals none). One row once keyed; a node started with another key refuses to serve.
CREATE TABLE national.index_keying (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    fingerprint text NOT NULL,
    keyed_at    timestamptz NOT NULL DEFAULT now(),
    -- Entries and claims re-keyed when the key was first applied (an index started empty: 0).
    rekeyed     bigint NOT NULL
);

-- Notices named the contested ID number in their text; the provinces hold it themselves.
UPDATE national.notices
   SET detail = 'the resident ID number is claimed by two provinces'
 WHERE detail LIKE 'resident ID number % is claimed by two provinces';
