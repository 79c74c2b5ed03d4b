-- What the province owes the national node, and what it learned from it.

ALTER TABLE identity.enrollments DROP CONSTRAINT enrollments_status_check;
ALTER TABLE identity.enrollments ADD CONSTRAINT enrollments_status_check
    CHECK (status IN ('pending', 'awaiting_national_check', 'active', 'rejected'));

-- The transactional outbox: each message is written in the same transaction as the change it
-- reports, and delivered (in sequence order, by message id, so the national node applies it
-- once) when the link is up. Delivered rows keep the national node's answer.
CREATE TABLE identity.outbox (
    sequence     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   uuid   NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    payload      jsonb  NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    outcome      jsonb
);

CREATE INDEX outbox_undelivered ON identity.outbox (sequence) WHERE delivered_at IS NULL;

-- Problems the national index found across provinces (pulled notices). One row per notice.
CREATE TABLE identity.national_flags (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notice_sequence       bigint NOT NULL UNIQUE,
    student_id            bigint NOT NULL,
    kind                  text   NOT NULL CHECK (kind IN ('duplicate_id_number', 'duplicate_name')),
    other_province        text   NOT NULL,
    other_registry_number text   NOT NULL,
    detail                text   NOT NULL,
    flagged_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX national_flags_student ON identity.national_flags (student_id);

-- How far the province has read the national node's notices.
CREATE TABLE identity.notice_cursor (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_sequence bigint  NOT NULL
);

INSERT INTO identity.notice_cursor (last_sequence) VALUES (0);

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
             ORDER BY f.kind) AS national_problems
FROM identity.students s
JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
JOIN identity.schools sc ON sc.code = e.school_code;
