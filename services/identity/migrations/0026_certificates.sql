-- 学籍证明 / 在读证明: a certificate the registry issues about a pupil's record, with a
-- verification code anyone the registry serves can check it by (VerifyCertificate). The
-- certificate keeps the record as it stood when issued; a check also says whether it still
-- stands so.
CREATE TABLE identity.certificates (
    -- Upper-case letters and digits, without 0/O/1/I: read off paper and typed back.
    code        text PRIMARY KEY CHECK (code ~ '^[A-HJ-NP-Z2-9]{12}$'),
    student_id  bigint NOT NULL REFERENCES identity.students (id),
    kind        text   NOT NULL CHECK (kind IN ('enrollment', 'attendance')),
    -- The record as the certificate states it (name, registry number, school, grade, class,
    -- status, entry date).
    statement   jsonb  NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT identity.clock_now(),
    issued_by   text   NOT NULL
);
CREATE INDEX certificates_student ON identity.certificates (student_id);
