-- Updates of a record's non-key fields (非关键字段), which the school keeps without approval
-- (Anhui 第十七条): one row per update, with each field's value before and after, so that the
-- student's history shows every value a field had and a retry answers the update it made.
CREATE TABLE identity.detail_updates (
    id              uuid PRIMARY KEY,
    student_id      bigint NOT NULL REFERENCES identity.students (id),
    -- The caller's idempotency key, scoped to the caller.
    idempotency_key text NOT NULL UNIQUE,
    -- Tells an honest retry from another request reusing the key.
    request_hash    bytea NOT NULL,
    -- [{field, from, to}] as the domain's FieldChange.
    changes         jsonb NOT NULL CHECK (jsonb_typeof(changes) = 'array'),
    reason          text NOT NULL,
    updated_by      text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX detail_updates_student ON identity.detail_updates (student_id, updated_at);
