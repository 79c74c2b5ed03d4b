-- Problem records get resolved: a request of kind `problem_resolution` on the status-change
-- workflow confirms a record (evidence, 佐证) or deletes it. A correction resolves what it
-- corrects.

-- A deleted record stays, visible to its authorities only.
ALTER TABLE identity.enrollments DROP CONSTRAINT enrollments_status_check;
ALTER TABLE identity.enrollments ADD CONSTRAINT enrollments_status_check
    CHECK (status IN ('pending', 'awaiting_national_check', 'active', 'rejected',
                      'transferred_out', 'suspended', 'left', 'graduated', 'completed',
                      'incomplete', 'dropped_out', 'deceased', 'deleted'));

-- The problem a resolution resolves and how: {problem, action}.
ALTER TABLE identity.status_changes ADD COLUMN resolution jsonb;
ALTER TABLE identity.status_changes ADD CONSTRAINT status_changes_resolution
    CHECK ((kind = 'problem_resolution') = (resolution IS NOT NULL));

ALTER TABLE identity.pending_tasks DROP CONSTRAINT pending_tasks_kind_check;
ALTER TABLE identity.pending_tasks ADD CONSTRAINT pending_tasks_kind_check
    CHECK (kind IN ('transfer', 'status_change', 'correction', 'problem_resolution'));

-- Records their authority confirmed genuine despite a problem: several members of one name
-- duplicate group may be (twins, namesakes).
CREATE TABLE identity.confirmed_records (
    student_id   bigint NOT NULL,
    problem      text   NOT NULL CHECK (problem IN ('duplicate_name', 'duplicate_id_number')),
    change_id    uuid   NOT NULL,
    confirmed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, problem)
);

-- Resident ID numbers found invalid on records already stored (bulk-loaded data, a province
-- changing its rules): a problem until corrected or deleted.
CREATE TABLE identity.id_number_problems (
    student_id bigint PRIMARY KEY,
    detail     text   NOT NULL,
    found_at   timestamptz NOT NULL DEFAULT now()
);

-- A name duplicate is open for a live member of a group with another live member, unless its
-- authority confirmed it.
CREATE OR REPLACE FUNCTION identity.has_open_problem(student bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM identity.national_flags f WHERE f.student_id = student)
        OR EXISTS (SELECT 1 FROM identity.id_number_problems p WHERE p.student_id = student)
        OR EXISTS (
            SELECT 1 FROM identity.students s
            JOIN identity.duplicate_groups g ON g.key = s.name_key AND g.registrations > 1
            WHERE s.id = student
              AND NOT EXISTS (SELECT 1 FROM identity.confirmed_records c
                              WHERE c.student_id = student AND c.problem = 'duplicate_name')
              AND (SELECT count(*) FROM identity.students s2
                   JOIN identity.enrollments e2 ON e2.student_id = s2.id AND e2.is_current
                   WHERE s2.name_key = s.name_key
                     AND e2.status NOT IN ('rejected', 'deleted')) > 1)
$$;

CREATE OR REPLACE VIEW identity.student_view AS
SELECT s.id, s.registry_number, s.name, s.gender, s.birth_date, s.ethnicity, s.document_type,
       s.document_number, s.guardian, s.registered_at, s.name_key,
       e.school_code, e.school_division, sc.registry_authority, e.grade, e.entry_date,
       e.entry_route, e.status, e.decided_at, e.decided_by, e.decision_reason,
       ARRAY(SELECT r.number FROM identity.registry_numbers r
             WHERE r.student_id = s.id AND r.number <> s.registry_number
             ORDER BY r.issued_at, r.number) AS aliases,
       e.status NOT IN ('rejected', 'deleted') AND EXISTS (
           SELECT 1 FROM identity.duplicate_groups g
           WHERE g.key = s.name_key AND g.registrations > 1
             AND NOT EXISTS (SELECT 1 FROM identity.confirmed_records c
                             WHERE c.student_id = s.id AND c.problem = 'duplicate_name')
             AND (SELECT count(*) FROM identity.students s2
                  JOIN identity.enrollments e2 ON e2.student_id = s2.id AND e2.is_current
                  WHERE s2.name_key = s.name_key
                    AND e2.status NOT IN ('rejected', 'deleted')) > 1
       ) AS duplicate_name,
       ARRAY(SELECT DISTINCT f.kind FROM identity.national_flags f WHERE f.student_id = s.id
             ORDER BY f.kind)
         || ARRAY(SELECT 'invalid_id_number'::text FROM identity.id_number_problems p
                  WHERE p.student_id = s.id) AS national_problems,
       e.left_reason
FROM identity.students s
JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
JOIN identity.schools sc ON sc.code = e.school_code;
