-- A suspension lasts a term (Model rules 第十五条: 休学期限为一年; the province may set
-- another in its status-change rules): its last day is kept on the enrollment while it is
-- suspended, moved on by an extension (延长休学). A suspension past its term is on the
-- authority's watch list. A record with no known term (imported suspended) counts as past it.
ALTER TABLE identity.enrollments ADD COLUMN suspended_until date;

-- Suspensions already approved get the national default term, counted from the effective date
-- of the suspension that put them there.
UPDATE identity.enrollments e
SET suspended_until = (c.effective_date + interval '12 months')::date
FROM (
    SELECT DISTINCT ON (enrollment_id) enrollment_id, effective_date
    FROM identity.status_changes
    WHERE kind = 'suspension' AND applied IS NOT NULL
    ORDER BY enrollment_id, effective_date DESC
) c
WHERE c.enrollment_id = e.id AND e.status = 'suspended';

-- Whatever moves a record out of `suspended` (a resumption, a withdrawal, a transfer that
-- picks the pupil up) ends its term: no path has to remember to.
CREATE FUNCTION identity.end_suspension_term() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'suspended' THEN
        NEW.suspended_until := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER end_suspension_term BEFORE INSERT OR UPDATE OF status ON identity.enrollments
    FOR EACH ROW EXECUTE FUNCTION identity.end_suspension_term();

CREATE INDEX enrollments_suspended_until ON identity.enrollments (school_division, suspended_until)
    WHERE status = 'suspended' AND is_current;

-- The term is part of the record as every read shows it.
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
       e.suspended_until
FROM identity.students s
JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
JOIN identity.schools sc ON sc.code = e.school_code;

-- When the registration that opened an enrollment was made (a new pupil's, or a graduate's
-- at the next stage's school): the authority's list of registrations made after the intake
-- deadline (9/30) reads it. NULL for an enrollment a transfer or an import of settled
-- records opened. Set by the database on every path that registers (an enrollment inserted
-- `pending`), from the node's clock.
ALTER TABLE identity.enrollments ADD COLUMN registered_at timestamptz;

UPDATE identity.enrollments e SET registered_at = s.registered_at
FROM identity.students s
WHERE s.id = e.student_id AND e.transfer_task IS NULL AND e.continues IS NULL
  AND (e.status IN ('pending', 'awaiting_national_check') OR e.approved_at IS NOT NULL)
  AND coalesce(e.decision_reason, '') NOT LIKE 'migrated by import%';
UPDATE identity.enrollments SET registered_at = coalesce(approved_at, decided_at)
WHERE continues IS NOT NULL AND registered_at IS NULL;

CREATE FUNCTION identity.stamp_registration() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'pending' AND NEW.registered_at IS NULL THEN
        NEW.registered_at := identity.clock_now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER stamp_registration BEFORE INSERT ON identity.enrollments
    FOR EACH ROW EXECUTE FUNCTION identity.stamp_registration();
