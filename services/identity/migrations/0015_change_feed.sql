-- The change feed: identity's enrollment events for statistics (DESIGN §6), written in the
-- same transaction as the change they describe (a transactional outbox), read by the stats
-- service through ChangeFeed.ReadChanges.
--
-- The rows are written by triggers, not by each store function: every path that changes
-- where a student counts (approval, the national check, status changes, transfers, the annual
-- cycle, progression, corrections, successions, migration, deletion) is covered by
-- construction, and a path added later cannot forget its event.

-- Two flags of the student record the statistics break figures down by.
ALTER TABLE identity.students ADD COLUMN migrant_child boolean NOT NULL DEFAULT false;
ALTER TABLE identity.students ADD COLUMN left_behind_child boolean NOT NULL DEFAULT false;

-- Reads show them (columns added at the end of the view).
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
       e.left_reason, s.provincial_fields, s.migrant_child, s.left_behind_child
FROM identity.students s
JOIN identity.enrollments e ON e.student_id = s.id AND e.is_current
JOIN identity.schools sc ON sc.code = e.school_code;

-- One row per change of where a student counts. `position` is NULL until the reader stamps
-- it: positions are handed out under a lock, in one round for every row committed by then,
-- so a row committed later always gets a larger position than any row already read (a
-- sequence alone would not: numbers are taken before commit, and commits reorder them).
-- `xid` keeps a transaction's rows together: a transfer inside the province closes the old
-- enrollment and opens the new one in one transaction, and the reader joins the two.
CREATE TABLE identity.change_feed (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid         xid8   NOT NULL DEFAULT pg_current_xact_id(),
    position    bigint UNIQUE,
    student_id  bigint NOT NULL,
    happened_on date   NOT NULL,
    kind        text   NOT NULL CHECK (kind IN (
        'registration', 'transfer', 'suspension', 'resumption', 'dropout', 'return',
        'departure', 'reinstatement', 'abroad', 'return_from_abroad', 'death', 'graduation',
        'progression', 'promotion', 'correction', 'succession', 'migration', 'deletion')),
    -- Where the student counted before and after (NULL: not counted), as
    -- {school, county, grade, entry_route, gender, ethnicity, birth_date, migrant, left_behind,
    --  registry_number, name, missing: the key fields the record lacks}.
    from_place  jsonb,
    to_place    jsonb,
    CHECK (from_place IS NOT NULL OR to_place IS NOT NULL)
);

CREATE INDEX change_feed_unstamped ON identity.change_feed (xid, id) WHERE position IS NULL;

-- The day a change takes effect, in China Standard Time.
CREATE FUNCTION identity.feed_day() RETURNS date LANGUAGE sql STABLE AS
$$ SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date $$;

-- Where an enrollment counts, with its student's attributes.
CREATE FUNCTION identity.feed_place(e identity.enrollments, s identity.students)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'school', e.school_code, 'county', e.school_division, 'grade', e.grade,
        'entry_route', e.entry_route, 'gender', s.gender, 'ethnicity', s.ethnicity,
        'birth_date', s.birth_date, 'migrant', s.migrant_child,
        'left_behind', s.left_behind_child, 'registry_number', s.registry_number,
        'name', s.name,
        'missing', to_jsonb(array_remove(ARRAY[
            CASE WHEN s.document_number IS NULL THEN 'document_number' END,
            CASE WHEN coalesce(s.guardian->>'phone', '') = '' THEN 'guardian.phone' END,
            CASE WHEN coalesce(s.guardian->>'name', '') = '' THEN 'guardian.name' END
        ], NULL)))
$$;

-- Counted: the current enrollment, active (在籍).
CREATE FUNCTION identity.feed_counts(e identity.enrollments) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT e.is_current AND e.status = 'active' $$;

-- Why an enrollment stopped counting, from the state it reached.
CREATE FUNCTION identity.feed_removal_kind(e identity.enrollments) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN e.status = 'transferred_out' THEN 'transfer'
        WHEN e.status = 'suspended' THEN 'suspension'
        WHEN e.status = 'dropped_out' THEN 'dropout'
        WHEN e.status = 'left' AND e.left_reason = 'abroad' THEN 'abroad'
        WHEN e.status = 'left' THEN 'departure'
        WHEN e.status IN ('graduated', 'completed', 'incomplete') THEN 'graduation'
        WHEN e.status = 'deceased' THEN 'death'
        WHEN e.status = 'deleted' THEN 'deletion'
        ELSE 'correction'
    END
$$;

-- Why an enrollment started counting, from the state it left.
CREATE FUNCTION identity.feed_addition_kind(before identity.enrollments) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN before.status IN ('pending', 'awaiting_national_check') THEN 'registration'
        WHEN before.status = 'suspended' THEN 'resumption'
        WHEN before.status = 'dropped_out' THEN 'return'
        WHEN before.status = 'left' AND before.left_reason = 'abroad' THEN 'return_from_abroad'
        WHEN before.status = 'left' THEN 'reinstatement'
        WHEN before.status = 'transferred_out' THEN 'transfer'
        ELSE 'correction'
    END
$$;

CREATE FUNCTION identity.feed_enrollments_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO identity.change_feed (student_id, happened_on, kind, from_place, to_place)
    SELECT n.student_id, identity.feed_day(),
           CASE WHEN n.continues IS NOT NULL THEN 'progression'
                WHEN n.transfer_task IS NOT NULL THEN 'transfer'
                ELSE 'migration' END,
           NULL, identity.feed_place(n, s)
    FROM inserted n JOIN identity.students s ON s.id = n.student_id
    WHERE identity.feed_counts(n)
    ORDER BY n.id;
    RETURN NULL;
END $$;

CREATE FUNCTION identity.feed_enrollments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO identity.change_feed (student_id, happened_on, kind, from_place, to_place)
    SELECT o.student_id,
           -- A closing (graduation) takes effect on its day, but never before the last
           -- decision on the enrollment (its approval, say): a year's figures never remove a
           -- student before adding them.
           CASE WHEN identity.feed_counts(o) AND NOT identity.feed_counts(n)
                     AND n.closed_on IS NOT NULL
                THEN greatest(n.closed_on, (o.decided_at AT TIME ZONE 'Asia/Shanghai')::date)
                ELSE identity.feed_day() END,
           CASE WHEN identity.feed_counts(o) AND identity.feed_counts(n) THEN
                     CASE WHEN o.school_code <> n.school_code THEN 'succession'
                          WHEN n.promoted_in IS DISTINCT FROM o.promoted_in THEN 'promotion'
                          ELSE 'correction' END
                WHEN identity.feed_counts(o) THEN identity.feed_removal_kind(n)
                -- A progression (升学) is approved like a registration.
                WHEN n.continues IS NOT NULL
                     AND o.status IN ('pending', 'awaiting_national_check') THEN 'progression'
                ELSE identity.feed_addition_kind(o) END,
           CASE WHEN identity.feed_counts(o) THEN identity.feed_place(o, s) END,
           CASE WHEN identity.feed_counts(n) THEN identity.feed_place(n, s) END
    FROM deleted o JOIN inserted n USING (id) JOIN identity.students s ON s.id = n.student_id
    WHERE (identity.feed_counts(o) OR identity.feed_counts(n))
      AND (identity.feed_counts(o) IS DISTINCT FROM identity.feed_counts(n)
           OR identity.feed_place(o, s) <> identity.feed_place(n, s))
    ORDER BY n.id;
    RETURN NULL;
END $$;

-- A corrected attribute of a counted student (gender, ethnicity, birth date, a flag) moves
-- the student between the breakdowns' counts.
CREATE FUNCTION identity.feed_students_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO identity.change_feed (student_id, happened_on, kind, from_place, to_place)
    SELECT n.id, identity.feed_day(), 'correction', identity.feed_place(e, o),
           identity.feed_place(e, n)
    FROM deleted o JOIN inserted n USING (id)
    JOIN identity.enrollments e ON e.student_id = n.id AND identity.feed_counts(e)
    WHERE (o.gender, o.ethnicity, o.birth_date, o.migrant_child, o.left_behind_child, o.name)
          IS DISTINCT FROM
          (n.gender, n.ethnicity, n.birth_date, n.migrant_child, n.left_behind_child, n.name)
    ORDER BY n.id;
    RETURN NULL;
END $$;

CREATE TRIGGER change_feed_enrollments_inserted AFTER INSERT ON identity.enrollments
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION identity.feed_enrollments_inserted();
CREATE TRIGGER change_feed_enrollments_updated AFTER UPDATE ON identity.enrollments
    REFERENCING OLD TABLE AS deleted NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION identity.feed_enrollments_updated();
CREATE TRIGGER change_feed_students_updated AFTER UPDATE ON identity.students
    REFERENCING OLD TABLE AS deleted NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION identity.feed_students_updated();
