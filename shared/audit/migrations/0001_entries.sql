-- The audit log of a node. A change writes its entry in its own transaction, unsealed; the sealer
-- later gives committed entries their chain position (seq) and hash, one batch at a time, under
-- the lock of the single chain_head row. Writers never wait for each other.
CREATE TABLE audit.entries (
    id           bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    jurisdiction text        NOT NULL,
    action       text        NOT NULL,
    object       text        NOT NULL,
    before       jsonb,
    after        jsonb,
    request_id   text        NOT NULL,
    seq          bigint,
    prev_hash    bytea,
    hash         bytea,
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL))
);

-- Writers touch only the primary key and this small partial index; chain positions are indexed
-- once sealed, by the sealer.
CREATE INDEX entries_unsealed ON audit.entries (id) WHERE seq IS NULL;
CREATE UNIQUE INDEX entries_seq ON audit.entries (seq) WHERE seq IS NOT NULL;

CREATE TABLE audit.chain_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint  NOT NULL,
    hash      bytea   NOT NULL
);

INSERT INTO audit.chain_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- The one way services write entries, so that they can add one inside any statement (a single
-- statement is its own transaction: the entry commits exactly when the change does).
CREATE FUNCTION audit.record(
    p_actor text, p_jurisdiction text, p_action text, p_object text,
    p_before jsonb, p_after jsonb, p_request_id text
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    new_id bigint;
BEGIN
    -- PL/pgSQL caches this plan per session; a SQL-language function would plan it every call.
    INSERT INTO audit.entries (actor, jurisdiction, action, object, before, after, request_id)
    VALUES (p_actor, p_jurisdiction, p_action, p_object, p_before, p_after, p_request_id)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;

-- The same for many entries at once (one call per batch of changes).
CREATE FUNCTION audit.record_many(
    p_actor text[], p_jurisdiction text[], p_action text, p_object text[],
    p_after jsonb[], p_request_id text[]
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    written bigint;
BEGIN
    INSERT INTO audit.entries (actor, jurisdiction, action, object, before, after, request_id)
    SELECT actor, jurisdiction, p_action, object, NULL, after, request_id
    FROM unnest(p_actor, p_jurisdiction, p_object, p_after, p_request_id)
        AS e(actor, jurisdiction, object, after, request_id);
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;
