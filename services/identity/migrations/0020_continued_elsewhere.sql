-- 升学 across provinces (籍随人走): when a finished record of this province continues at a
-- school of another, the national index says so; the record stays here as history and names
-- where the student went.
CREATE TABLE identity.continued_elsewhere (
    -- The national notice that told it: applied once.
    notice_sequence bigint PRIMARY KEY,
    student_id      bigint NOT NULL REFERENCES identity.students (id),
    -- The province the student continues in, and the number it registered them under first.
    province        text NOT NULL CHECK (province ~ '^[0-9]{2}$'),
    registry_number text NOT NULL,
    detail          text NOT NULL,
    noticed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX continued_elsewhere_student ON identity.continued_elsewhere (student_id);
