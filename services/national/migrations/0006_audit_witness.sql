-- Audit chain heads the nodes sent, signed by their authority's key: the witness log. A node's
-- database can be rewritten by whoever owns it, hashes recomputed and all; these rows, kept
-- here, show it.
CREATE TABLE national.audit_witness (
    -- The SPIFFE id of the service that sent the head.
    node         text        NOT NULL,
    seq          bigint      NOT NULL,
    hash         bytea       NOT NULL,
    signed_at    timestamptz NOT NULL,
    key_id       text        NOT NULL,
    signature    text        NOT NULL,
    witnessed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, seq)
);

-- Heads are only added.
CREATE FUNCTION national.refuse_witness_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'national.audit_witness is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_witness_append_only BEFORE UPDATE OR DELETE ON national.audit_witness
    FOR EACH ROW EXECUTE FUNCTION national.refuse_witness_change();
