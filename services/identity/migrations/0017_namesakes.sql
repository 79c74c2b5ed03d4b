-- DESIGN §4, problem (3): the name check is the duplicate check for students WITHOUT an ID
-- number. Two live records with the same name, gender and birth date are a problem only when
-- at least one of the two has no resident ID number: namesakes with distinct ID numbers (two
-- 王子涵 born the same day) are two children, and the ID duplicate check covers the rest.
-- The flag is computed, so the namesakes flagged before this migration are cleared by it.

-- Whether a record carries a resident ID number (a released claim still does).
CREATE FUNCTION identity.holds_resident_id(document_type text, document_number text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT document_type = 'resident_id_card' AND document_number IS NOT NULL
$$;

-- Whether another live record shares `student`'s name key, one of the two without an ID.
-- The duplicate group's count is the cheap first test (an index on groups of two or more).
CREATE FUNCTION identity.has_namesake(student bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM identity.students s
        JOIN identity.duplicate_groups g ON g.key = s.name_key AND g.registrations > 1
        JOIN identity.students s2 ON s2.name_key = s.name_key AND s2.id <> s.id
        JOIN identity.enrollments e2 ON e2.student_id = s2.id AND e2.is_current
        WHERE s.id = student
          AND e2.status NOT IN ('rejected', 'deleted')
          AND NOT (identity.holds_resident_id(s.document_type, s.document_number)
                   AND identity.holds_resident_id(s2.document_type, s2.document_number)))
$$;

CREATE OR REPLACE FUNCTION identity.has_open_problem(student bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM identity.national_flags f WHERE f.student_id = student)
        OR EXISTS (SELECT 1 FROM identity.id_number_problems p WHERE p.student_id = student)
        OR (identity.has_namesake(student)
            AND NOT EXISTS (SELECT 1 FROM identity.confirmed_records c
                            WHERE c.student_id = student AND c.problem = 'duplicate_name'))
$$;

CREATE OR REPLACE VIEW identity.student_view AS
SELECT s.id, s.registry_number, s.name, s.gender, s.birth_date, s.ethnicity, s.document_type,
       s.document_number, s.guardian, s.registered_at, s.name_key,
       e.school_code, e.school_division, sc.registry_authority, e.grade, e.entry_date,
       e.entry_route, e.status, e.decided_at, e.decided_by, e.decision_reason,
       ARRAY(SELECT r.number FROM identity.registry_numbers r
             WHERE r.student_id = s.id AND r.number <> s.registry_number
             ORDER BY r.issued_at, r.number) AS aliases,
       e.status NOT IN ('rejected', 'deleted')
         AND NOT EXISTS (SELECT 1 FROM identity.confirmed_records c
                         WHERE c.student_id = s.id AND c.problem = 'duplicate_name')
         AND identity.has_namesake(s.id) AS duplicate_name,
       ARRAY(SELECT DISTINCT f.kind FROM identity.national_flags f WHERE f.student_id = s.id
             ORDER BY f.kind)
         || ARRAY(SELECT 'invalid_id_number'::text FROM identity.id_number_problems p
                  WHERE p.student_id = s.id) AS national_problems,
       e.left_reason, s.provincial_fields, s.migrant_child, s.left_behind_child
FROM identity.students s
JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
JOIN identity.schools sc ON sc.code = e.school_code;
