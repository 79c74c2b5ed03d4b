-- Provincial fields (非基础字段): the fields a province declares beyond the national record
-- (policy/provincial_fields.toml), by name. Checked by the service against the declaration;
-- kept in the province, never sent to the national node.
ALTER TABLE identity.students
    ADD COLUMN provincial_fields jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT students_provincial_fields_object
        CHECK (jsonb_typeof(provincial_fields) = 'object');

-- Reads show them (a column added at the end of the view).
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
       e.left_reason, s.provincial_fields
FROM identity.students s
JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
JOIN identity.schools sc ON sc.code = e.school_code;
