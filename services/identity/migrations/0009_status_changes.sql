-- Status changes (异动) on the shared approval workflow, and the evidence they carry.

-- Why a `left` enrollment left.
ALTER TABLE identity.enrollments ADD COLUMN left_reason text
    CHECK (left_reason IN ('withdrawal', 'expulsion', 'abroad', 'missing', 'other'));

-- A pending task may now be a status change as well as a transfer: still one per student.
ALTER TABLE identity.pending_tasks DROP CONSTRAINT pending_tasks_kind_check;
ALTER TABLE identity.pending_tasks ADD CONSTRAINT pending_tasks_kind_check
    CHECK (kind IN ('transfer', 'status_change'));

-- Evidence files (JPEG, PNG or PDF, checked by content, at most 2 MiB), attached to a student:
-- readable only within the record's jurisdiction.
CREATE TABLE identity.evidence (
    id          uuid PRIMARY KEY,
    student_id  bigint NOT NULL,
    file_name   text   NOT NULL,
    media_type  text   NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    size        integer NOT NULL CHECK (size > 0 AND size <= 2097152),
    sha256      bytea  NOT NULL,
    content     bytea  NOT NULL,
    uploaded_by text   NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX evidence_student ON identity.evidence (student_id);

-- One status change: the request, its workflow task (the shared workflow's Task as JSON: its
-- steps, deadlines and decisions), and what it did once approved.
CREATE TABLE identity.status_changes (
    id                 uuid PRIMARY KEY,
    student_id         bigint NOT NULL,
    enrollment_id      bigint NOT NULL,
    kind               text   NOT NULL,
    reason             text   NOT NULL,
    grounds            text   NOT NULL,
    effective_date     date   NOT NULL,
    evidence           uuid[] NOT NULL,
    school_code        text   NOT NULL,
    school_division    text   NOT NULL,
    registry_authority text   NOT NULL,
    state              text   NOT NULL
        CHECK (state IN ('in_progress', 'approved', 'rejected', 'cancelled')),
    task               jsonb  NOT NULL,
    -- The open step's deadline, for the sweeper; NULL once the task ended.
    due_at             timestamptz,
    requested_by       text   NOT NULL,
    requested_at       timestamptz NOT NULL DEFAULT now(),
    idempotency_key    text   NOT NULL UNIQUE,
    request_hash       bytea  NOT NULL,
    -- The enrollment before and after the approved change.
    applied            jsonb
);

CREATE INDEX status_changes_due ON identity.status_changes (due_at) WHERE state = 'in_progress';
CREATE INDEX status_changes_student ON identity.status_changes (student_id);
CREATE INDEX status_changes_open ON identity.status_changes (school_code, registry_authority)
    WHERE state = 'in_progress';

-- Reads carry why a `left` record left.
CREATE OR REPLACE VIEW identity.student_view AS
SELECT s.id, s.registry_number, s.name, s.gender, s.birth_date, s.ethnicity, s.document_type,
       s.document_number, s.guardian, s.registered_at, s.name_key,
       e.school_code, e.school_division, sc.registry_authority, e.grade, e.entry_date,
       e.entry_route, e.status, e.decided_at, e.decided_by, e.decision_reason,
       ARRAY(SELECT r.number FROM identity.registry_numbers r
             WHERE r.student_id = s.id AND r.number <> s.registry_number
             ORDER BY r.issued_at, r.number) AS aliases,
       e.status <> 'rejected' AND EXISTS (
           SELECT 1 FROM identity.duplicate_groups g
           WHERE g.key = s.name_key AND g.registrations > 1
             AND (SELECT count(*) FROM identity.students s2
                  JOIN identity.enrollments e2 ON e2.student_id = s2.id AND e2.is_current
                  WHERE s2.name_key = s.name_key AND e2.status <> 'rejected') > 1
       ) AS duplicate_name,
       ARRAY(SELECT DISTINCT f.kind FROM identity.national_flags f WHERE f.student_id = s.id
             ORDER BY f.kind) AS national_problems,
       e.left_reason
FROM identity.students s
JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
JOIN identity.schools sc ON sc.code = e.school_code;
