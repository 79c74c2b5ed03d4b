-- The identity service's own tables. No other service reads them.

-- The schools this node knows, with what registration needs: where the school is and which
-- authority approves its registrations. Filled from the school-code registry.
CREATE TABLE identity.schools (
    code               text PRIMARY KEY,
    name               text NOT NULL,
    division           text NOT NULL,
    registry_authority text NOT NULL,
    open_from          date NOT NULL,
    open_until         date
);

CREATE TABLE identity.students (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The current number; uniqueness is registry_numbers' primary key.
    registry_number  text   NOT NULL,
    name             text   NOT NULL,
    gender           text   NOT NULL CHECK (gender IN ('male', 'female')),
    birth_date       date   NOT NULL,
    ethnicity        text   NOT NULL,
    document_type    text   NOT NULL,
    document_number  text,
    -- The resident ID number while the record is live (pending or active): one live record per
    -- ID number, enforced here even between concurrent registrations. NULL once rejected.
    id_number_claim  text   UNIQUE,
    -- name|gender|birth date: the key of the duplicate-without-ID check.
    name_key         text   NOT NULL,
    guardian         jsonb  NOT NULL,
    idempotency_key  text   NOT NULL UNIQUE,
    request_hash     bytea  NOT NULL,
    registered_by    text   NOT NULL,
    registered_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX students_name_key ON identity.students (name_key);
-- Live records are found by id_number_claim; this finds the others (rejected, closed).
CREATE INDEX students_released_document_number ON identity.students (document_number)
    WHERE id_number_claim IS NULL AND document_number IS NOT NULL;

-- Every number ever issued, current or alias. The primary key makes sure a number is never
-- issued to anyone else. Rows here and in enrollments are written by the same statement as their
-- student and students are never deleted, so no foreign key re-checks that on every insert.
CREATE TABLE identity.registry_numbers (
    number     text   PRIMARY KEY,
    student_id bigint NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX registry_numbers_student ON identity.registry_numbers (student_id);

-- Enrollments: one student's record at one school. Exactly one is current per student.
CREATE TABLE identity.enrollments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    student_id      bigint NOT NULL,
    -- No foreign key to schools: every registration at a school would share-lock that one row,
    -- and concurrent registrations would queue on it. The handler checks the school instead.
    school_code     text   NOT NULL,
    school_division text   NOT NULL,
    grade           smallint NOT NULL,
    entry_date      date   NOT NULL,
    entry_route     text   NOT NULL,
    status          text   NOT NULL CHECK (status IN ('pending', 'active', 'rejected')),
    is_current      boolean NOT NULL DEFAULT true,
    decided_at      timestamptz,
    decided_by      text,
    decision_reason text
);

CREATE UNIQUE INDEX enrollments_one_current ON identity.enrollments (student_id) WHERE is_current;
CREATE INDEX enrollments_school ON identity.enrollments (school_code) WHERE is_current;

-- Duplicate-without-ID groups. Every registration bumps its key's counter in the same
-- statement; the row lock of that upsert orders concurrent registrations of one key, so the
-- second always sees the first. A group with more than one live member is a problem record.
CREATE TABLE identity.duplicate_groups (
    key           text   PRIMARY KEY,
    registrations bigint NOT NULL
);

CREATE INDEX duplicate_groups_problems ON identity.duplicate_groups (key) WHERE registrations > 1;

-- J-number sequences per (division, birth date).
CREATE TABLE identity.j_sequences (
    division   text NOT NULL,
    birth_date date NOT NULL,
    last_value integer NOT NULL,
    PRIMARY KEY (division, birth_date)
);

-- A student with the current enrollment, aliases and open duplicate flags: what reads return.
CREATE VIEW identity.student_view AS
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
       ) AS duplicate_name
FROM identity.students s
JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
JOIN identity.schools sc ON sc.code = e.school_code;
