-- The transfer service's own tables. No other service reads them.

-- One transfer: what the receiving school typed, the two schools, the state of the saga.
CREATE TABLE transfers.transfers (
    id                  uuid PRIMARY KEY,
    -- The starter's key, scoped by the starter (a retry answers the same transfer).
    idempotency_key     text  NOT NULL UNIQUE,
    request_hash        bytea NOT NULL,
    -- starting: the student is being held; in_progress: approvals run; approved: the record is
    -- being moved (effect 'complete'); completed; rejected / cancelled: the hold is released
    -- (effect 'release'); refused at start.
    state               text  NOT NULL CHECK (state IN ('starting', 'in_progress', 'approved',
                              'completed', 'rejected', 'cancelled', 'refused')),
    receiving_school    text  NOT NULL,
    receiving_division  text  NOT NULL,
    receiving_authority text  NOT NULL,
    typed_number        text  NOT NULL,
    typed_name          text  NOT NULL,
    typed_birth_date    date  NOT NULL,
    target_grade        smallint NOT NULL CHECK (target_grade BETWEEN 1 AND 12),
    reason              text  NOT NULL,
    evidence            text[] NOT NULL,
    -- Known once the student is held; shown to the receiving side only after completion.
    sending_school      text,
    sending_division    text,
    sending_authority   text,
    registry_number     text,
    started_by          text  NOT NULL,
    started_at          timestamptz NOT NULL DEFAULT now(),
    ended_at            timestamptz,
    ended_by            text,
    end_reason          text,
    refusal             text,
    national_code       text
);

CREATE INDEX transfers_starting ON transfers.transfers (started_at) WHERE state = 'starting';
CREATE INDEX transfers_receiving ON transfers.transfers (receiving_division text_pattern_ops, started_at);
CREATE INDEX transfers_sending ON transfers.transfers (sending_division text_pattern_ops, started_at);

-- The approval steps, in order. A step's deadline is written once, when its turn opens (again
-- on an escalation, for the party above).
CREATE TABLE transfers.steps (
    transfer_id    uuid     NOT NULL REFERENCES transfers.transfers (id),
    position       smallint NOT NULL,
    kind           text     NOT NULL,
    jurisdiction   text     NOT NULL,
    province       text     NOT NULL,
    state          text     NOT NULL CHECK (state IN ('waiting', 'open', 'approved', 'rejected', 'skipped')),
    deadline       date,
    due_at         timestamptz,
    -- The deadline reaches a year whose calendar is not loaded: counted on weekends only.
    estimated      boolean  NOT NULL DEFAULT false,
    timeout_action text     NOT NULL CHECK (timeout_action IN ('approve', 'reject', 'escalate')),
    escalations    integer  NOT NULL DEFAULT 0,
    verdict        text     CHECK (verdict IN ('approve', 'reject')),
    decided_by     text,
    decided_at     timestamptz,
    reason         text,
    on_timeout     boolean  NOT NULL DEFAULT false,
    PRIMARY KEY (transfer_id, position)
);

CREATE INDEX steps_due ON transfers.steps (due_at) WHERE state = 'open';
CREATE INDEX steps_inbox ON transfers.steps (jurisdiction, due_at) WHERE state = 'open';

-- What the saga owes the identity service (a transactional outbox): written in the transaction
-- that ends the approvals, carried out by the effect runner, idempotent on the transfer id.
CREATE TABLE transfers.effects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id uuid   NOT NULL REFERENCES transfers.transfers (id),
    kind        text   NOT NULL CHECK (kind IN ('complete', 'release')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    done_at     timestamptz,
    UNIQUE (transfer_id, kind)
);

CREATE INDEX effects_pending ON transfers.effects (id) WHERE done_at IS NULL;
