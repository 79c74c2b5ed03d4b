-- The school year: each school's stages and lengths of schooling, the states an enrollment
-- ends in, progression to the next stage, and the annual cycle's runs.

-- The stages a school offers with their length of schooling (学制), as the published school list
-- gives them: [{"stage": "primary", "years": 6}, ...]. Schools known before the list carried
-- them take the national default of their category.
ALTER TABLE identity.schools ADD COLUMN stages jsonb;
UPDATE identity.schools SET stages = CASE substr(code, 1, 2)
    WHEN '21' THEN '[{"stage": "primary", "years": 6}]'
    WHEN '22' THEN '[{"stage": "primary", "years": 6}]'
    WHEN '31' THEN '[{"stage": "junior", "years": 3}]'
    WHEN '32' THEN '[{"stage": "junior", "years": 3}]'
    WHEN '33' THEN '[{"stage": "junior", "years": 3}]'
    WHEN '37' THEN '[{"stage": "junior", "years": 3}]'
    WHEN '34' THEN '[{"stage": "senior", "years": 3}]'
    WHEN '35' THEN '[{"stage": "senior", "years": 3}]'
    WHEN '36' THEN '[{"stage": "senior", "years": 3}]'
    WHEN '51' THEN '[{"stage": "special", "years": 9}]'
    ELSE '[]' END::jsonb;
ALTER TABLE identity.schools ALTER COLUMN stages SET NOT NULL;
-- Derived from the stages when the school is written (the cycle reads them per enrollment):
-- the grades that graduate (the last of each run of grades taught), and those of them whose
-- graduation the registry authority confirms (senior high).
ALTER TABLE identity.schools ADD COLUMN graduating_grades smallint[];
ALTER TABLE identity.schools ADD COLUMN confirmed_grades smallint[];
UPDATE identity.schools SET
    graduating_grades = CASE stages->0->>'stage'
        WHEN 'primary' THEN '{6}' WHEN 'junior' THEN '{9}' WHEN 'senior' THEN '{12}'
        WHEN 'special' THEN '{9}' ELSE '{}' END::smallint[],
    confirmed_grades = CASE stages->0->>'stage' WHEN 'senior' THEN '{12}' ELSE '{}' END::smallint[];
ALTER TABLE identity.schools ALTER COLUMN graduating_grades SET NOT NULL;
ALTER TABLE identity.schools ALTER COLUMN confirmed_grades SET NOT NULL;

ALTER TABLE identity.enrollments DROP CONSTRAINT enrollments_status_check;
ALTER TABLE identity.enrollments ADD CONSTRAINT enrollments_status_check
    CHECK (status IN ('pending', 'awaiting_national_check', 'active', 'rejected',
                      'transferred_out', 'suspended', 'left', 'graduated', 'completed',
                      'incomplete', 'dropped_out', 'deceased'));

-- The summer (calendar year) whose promotion moved this enrollment up a grade: promotion runs
-- once per enrollment and year, whatever crashes and reruns.
ALTER TABLE identity.enrollments ADD COLUMN promoted_in smallint;
-- The day a closing state (graduated, completed, incomplete, ...) took effect.
ALTER TABLE identity.enrollments ADD COLUMN closed_on date;
-- Progression (升学): the finished enrollment this one continues, at the next stage's school.
ALTER TABLE identity.enrollments ADD COLUMN continues bigint;
-- A progression's idempotency key (the caller's, scoped) and request digest; a first
-- registration keeps its own on the student.
ALTER TABLE identity.enrollments ADD COLUMN idempotency_key text UNIQUE;
ALTER TABLE identity.enrollments ADD COLUMN request_hash bytea;

-- Graduation outcomes a school recorded before the cycle graduates its final grade (completed
-- or incomplete instead of graduated), and the authority's confirmation of a senior high
-- school's graduation, which the cycle waits for.
CREATE TABLE identity.graduation_outcomes (
    enrollment_id bigint PRIMARY KEY,
    cycle_year    smallint NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('graduated', 'completed', 'incomplete')),
    recorded_by   text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identity.graduation_confirmations (
    school_code  text NOT NULL,
    cycle_year   smallint NOT NULL,
    confirmed_by text NOT NULL,
    confirmed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (school_code, cycle_year)
);

-- The annual cycle's steps, one row per (summer, step): where a batched run stands, so a run
-- cut short resumes after the last enrollment it finished, and a finished step is not run again.
CREATE TABLE identity.cycle_steps (
    cycle_year  smallint NOT NULL,
    step        text NOT NULL CHECK (step IN ('graduation', 'promotion')),
    state       text NOT NULL CHECK (state IN ('running', 'done')),
    -- The last enrollment id the step has gone through.
    watermark   bigint NOT NULL DEFAULT 0,
    -- The highest enrollment id when the step started: enrollments opened later (new intake,
    -- arrivals by transfer, which chose their grade) are not the step's to move.
    ceiling     bigint NOT NULL,
    changed     bigint NOT NULL DEFAULT 0,
    blocked     bigint NOT NULL DEFAULT 0,
    started_by  text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (cycle_year, step)
);

-- Whether a student's record has an open problem (DESIGN §4): a duplicate the national index
-- found, or another live record with the same name, gender and birth date. Problems block
-- graduation and transfers.
CREATE FUNCTION identity.has_open_problem(student bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM identity.national_flags f WHERE f.student_id = student)
        OR EXISTS (
            SELECT 1 FROM identity.students s
            JOIN identity.duplicate_groups g ON g.key = s.name_key AND g.registrations > 1
            WHERE s.id = student
              AND (SELECT count(*) FROM identity.students s2
                   JOIN identity.enrollments e2 ON e2.student_id = s2.id AND e2.is_current
                   WHERE s2.name_key = s.name_key AND e2.status <> 'rejected') > 1)
$$;
