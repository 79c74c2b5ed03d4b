-- The provincial side of the school-code registry: applications on their way to the national
-- authority, and the replica of the published code list.

CREATE TABLE schools_provincial.applications (
    id              text PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    request_hash    bytea NOT NULL,
    -- The county that filed it (the school's location).
    county          text NOT NULL,
    profile         jsonb NOT NULL,
    open_from       date NOT NULL,
    status          text NOT NULL CHECK (status IN ('filed', 'county_endorsed', 'city_endorsed',
        'province_endorsed', 'submitted', 'approved', 'rejected', 'returned')),
    code            text,
    filed_by        text NOT NULL,
    filed_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX applications_status ON schools_provincial.applications (status);

CREATE TABLE schools_provincial.application_steps (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id text NOT NULL REFERENCES schools_provincial.applications (id),
    action         text NOT NULL,
    actor          text NOT NULL,
    reason         text NOT NULL DEFAULT '',
    at             timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX application_steps_application ON schools_provincial.application_steps (application_id);

-- The replica: each school as the newest applied publication describes it.
CREATE TABLE schools_provincial.schools (
    code               text PRIMARY KEY,
    name               text NOT NULL,
    category           text NOT NULL,
    division           text NOT NULL,
    status             text NOT NULL,
    -- The whole record as published (profile, dates, former names, successors).
    record             jsonb NOT NULL,
    published_in       bigint NOT NULL
);

CREATE INDEX replica_schools_division ON schools_provincial.schools (division);

CREATE TABLE schools_provincial.lineage (
    predecessor    text NOT NULL,
    successor      text NOT NULL,
    kind           text NOT NULL,
    effective_date date NOT NULL,
    PRIMARY KEY (predecessor, successor)
);

CREATE INDEX replica_lineage_successor ON schools_provincial.lineage (successor);

-- How far this province has replicated: the last publication applied and the last national
-- decision seen. One row.
CREATE TABLE schools_provincial.replica_state (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version         bigint NOT NULL DEFAULT 0,
    decision_cursor bigint NOT NULL DEFAULT 0
);

INSERT INTO schools_provincial.replica_state DEFAULT VALUES;
