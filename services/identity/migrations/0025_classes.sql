-- Classes (班级) and each pupil's number in the class (班内学号): a school's classes per school
-- year (named by the calendar year the school year starts in: 2026 is 2026–2027), each pupil's
-- current enrollment in at most one, with a seat number unique in the class. A transfer opens
-- a new enrollment, which starts without a class; promotion carries classes forward when the
-- school confirms it (CarryClassesForward).
CREATE TABLE identity.classes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    school_code  text     NOT NULL,
    school_year  smallint NOT NULL CHECK (school_year BETWEEN 2000 AND 2100),
    grade        smallint NOT NULL CHECK (grade BETWEEN 1 AND 12),
    name         text     NOT NULL CHECK (length(name) BETWEEN 1 AND 30),
    head_teacher text     CHECK (length(head_teacher) <= 30),
    -- The class of the year before that this one carries forward (its pupils moved up).
    carried_from bigint   REFERENCES identity.classes (id),
    created_at   timestamptz NOT NULL DEFAULT identity.clock_now(),
    created_by   text     NOT NULL,
    UNIQUE (school_code, school_year, name)
);
CREATE UNIQUE INDEX classes_carried_once ON identity.classes (carried_from)
    WHERE carried_from IS NOT NULL;

ALTER TABLE identity.enrollments
    ADD COLUMN class_id bigint REFERENCES identity.classes (id),
    ADD COLUMN class_seat smallint CHECK (class_seat BETWEEN 1 AND 999),
    ADD CONSTRAINT a_seat_only_in_a_class CHECK ((class_id IS NULL) = (class_seat IS NULL));

-- One pupil per seat of a class, among the enrollments the class holds now.
CREATE UNIQUE INDEX enrollments_class_seat ON identity.enrollments (class_id, class_seat)
    WHERE is_current AND class_id IS NOT NULL;

-- The class is part of the record as every read shows it.
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
       e.left_reason, s.provincial_fields, s.migrant_child, s.left_behind_child,
       e.suspended_until, e.class_id, cl.name AS class_name, e.class_seat
FROM identity.students s
JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
JOIN identity.schools sc ON sc.code = e.school_code
LEFT JOIN identity.classes cl ON cl.id = e.class_id;
