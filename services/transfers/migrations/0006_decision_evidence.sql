-- Every decision that crosses provinces carries evidence that the deciding province made it:
-- the deciding node's signature over the decision (`domain::evidence::decision_payload`),
-- with the signer's certificate chain. Kept per step: the other province's as received and
-- checked, this province's as sent. A dispute about who moved a child is settled from here.
CREATE TABLE transfers.decision_evidence (
    transfer_id  uuid NOT NULL REFERENCES transfers.transfers (id),
    step         integer NOT NULL CHECK (step >= 0),
    -- The signer's identity (SPIFFE id), as its certificate names it.
    signer       text NOT NULL,
    payload      bytea NOT NULL,
    scheme       integer NOT NULL,
    signature    bytea NOT NULL,
    certificates bytea[] NOT NULL,
    kept_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (transfer_id, step)
);
