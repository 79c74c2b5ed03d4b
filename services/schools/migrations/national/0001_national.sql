-- The national school-code registry: the authority's own tables. No other service reads them.

-- Every code ever issued. Rows are never deleted (a trigger refuses it): a voided code stays
-- here for ever, and codes only come from code_sequences, so it can never be issued again.
CREATE TABLE schools_national.schools (
    code               text PRIMARY KEY,
    name               text NOT NULL,
    category           text NOT NULL,
    province           text NOT NULL,
    stages             jsonb NOT NULL,
    division           text NOT NULL,
    registry_authority text NOT NULL,
    operator_type      text NOT NULL CHECK (operator_type IN ('public', 'private')),
    address            text NOT NULL,
    status             text NOT NULL CHECK (status IN ('open', 'closed', 'voided')),
    open_from          date NOT NULL,
    open_until         date,
    -- The application the code was issued for (NULL for schools loaded as existing).
    application_id     text UNIQUE,
    CHECK ((status = 'open') = (open_until IS NULL)),
    CHECK (substr(code, 1, 2) = category AND substr(code, 3, 2) = province)
);

CREATE INDEX schools_division ON schools_national.schools (division);

-- The last sequence number issued per (category, province). Allocation bumps the row inside
-- the approving transaction: concurrent approvals queue on the row lock, and a rolled-back
-- approval rolls its number back, so numbers are neither duplicated nor skipped.
CREATE TABLE schools_national.code_sequences (
    category   text NOT NULL,
    province   text NOT NULL,
    last_value integer NOT NULL CHECK (last_value BETWEEN 1 AND 999999),
    PRIMARY KEY (category, province)
);

-- Names a school had before a rename, with the day the next name took effect.
CREATE TABLE schools_national.former_names (
    code           text NOT NULL REFERENCES schools_national.schools (code),
    name           text NOT NULL,
    replaced_on    date NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX former_names_code ON schools_national.former_names (code);

-- Predecessor → successor links of merges and category changes.
CREATE TABLE schools_national.lineage (
    predecessor    text NOT NULL REFERENCES schools_national.schools (code),
    successor      text NOT NULL REFERENCES schools_national.schools (code),
    kind           text NOT NULL CHECK (kind IN ('merge', 'category_change')),
    effective_date date NOT NULL,
    PRIMARY KEY (predecessor, successor)
);

CREATE INDEX lineage_successor ON schools_national.lineage (successor);

-- Applications the provinces submitted, and the decisions on them. `decision_cursor` orders the
-- decisions a province pulls.
CREATE SEQUENCE schools_national.decision_cursor;

CREATE TABLE schools_national.applications (
    id              text PRIMARY KEY,
    province        text NOT NULL,
    profile         jsonb NOT NULL,
    open_from       date NOT NULL,
    filed_by        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected')),
    code            text REFERENCES schools_national.schools (code),
    reason          text,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    decided_by      text,
    decided_at      timestamptz,
    decision_cursor bigint UNIQUE
);

CREATE INDEX applications_decisions ON schools_national.applications (province, decision_cursor)
    WHERE decision_cursor IS NOT NULL;

-- Every change to the code list, in order. `version` is NULL until a publication takes it;
-- from then on the row is frozen.
CREATE TABLE schools_national.changes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version        bigint,
    kind           text NOT NULL
        CHECK (kind IN ('added', 'renamed', 'merged', 'voided', 'reopened')),
    code           text NOT NULL REFERENCES schools_national.schools (code),
    -- The school as it stood right after the change.
    school         jsonb NOT NULL,
    predecessors   text[] NOT NULL DEFAULT '{}',
    effective_date date NOT NULL,
    reason         text NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX changes_unpublished ON schools_national.changes (id) WHERE version IS NULL;
CREATE INDEX changes_version ON schools_national.changes (version, id);

CREATE TABLE schools_national.publications (
    version      bigint PRIMARY KEY CHECK (version > 0),
    published_at timestamptz NOT NULL DEFAULT now(),
    note         text NOT NULL,
    changes      integer NOT NULL
);

-- Publications are immutable, their changes too, and no issued code is ever deleted.
CREATE FUNCTION schools_national.refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'changes' AND TG_OP = 'UPDATE' AND OLD.version IS NULL
       AND NEW.version IS NOT NULL
       AND (NEW.kind, NEW.code, NEW.school, NEW.predecessors, NEW.effective_date, NEW.reason)
           IS NOT DISTINCT FROM
           (OLD.kind, OLD.code, OLD.school, OLD.predecessors, OLD.effective_date, OLD.reason) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'schools_national.% rows are immutable (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER changes_immutable BEFORE UPDATE OR DELETE ON schools_national.changes
    FOR EACH ROW EXECUTE FUNCTION schools_national.refuse_rewrite();
CREATE TRIGGER publications_immutable BEFORE UPDATE OR DELETE ON schools_national.publications
    FOR EACH ROW EXECUTE FUNCTION schools_national.refuse_rewrite();
CREATE TRIGGER schools_never_deleted BEFORE DELETE ON schools_national.schools
    FOR EACH ROW EXECUTE FUNCTION schools_national.refuse_rewrite();

-- What a school record carries besides its columns: the profile as one document (as the
-- domain reads it), its former names, and the codes that carry it on.
CREATE FUNCTION schools_national.school_extras(
    s schools_national.schools,
    OUT profile jsonb, OUT former_names text[], OUT replaced_on date[], OUT successors text[])
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
               'name', s.name, 'category', s.category, 'stages', s.stages,
               'division', s.division, 'registry_authority', s.registry_authority,
               'operator_type', s.operator_type, 'address', s.address),
           ARRAY(SELECT f.name FROM schools_national.former_names f
                 WHERE f.code = s.code ORDER BY f.replaced_on, f.recorded_at),
           ARRAY(SELECT f.replaced_on FROM schools_national.former_names f
                 WHERE f.code = s.code ORDER BY f.replaced_on, f.recorded_at),
           ARRAY(SELECT l.successor FROM schools_national.lineage l
                 WHERE l.predecessor = s.code ORDER BY l.successor)
$$;
