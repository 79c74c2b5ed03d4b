-- Bulk import jobs: a file of students imported as one job, resumable after a crash.

CREATE TABLE identity.import_jobs (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('intake', 'migration')),
    -- Where the job was started: the same file sent again in the same jurisdiction (same
    -- SHA-256) attaches to this job instead of importing anything twice.
    jurisdiction  text NOT NULL,
    file_sha256   bytea NOT NULL,
    -- The county-level division the job belongs to (a school job: its school's), for scope.
    division      text NOT NULL,
    file_name     text NOT NULL,
    format        text NOT NULL CHECK (format IN ('csv', 'xlsx')),
    encoding      text,
    -- The file's heading row, as it was: the error file repeats it.
    headings      text[] NOT NULL DEFAULT '{}',
    started_by    text NOT NULL,
    state         text NOT NULL CHECK (state IN ('running', 'finished', 'failed')),
    failure       text,
    -- Every row up to this sheet row number is committed (the heading row is 1): a resumed
    -- job skips them.
    done_through  bigint NOT NULL DEFAULT 1,
    imported      bigint NOT NULL DEFAULT 0,
    already       bigint NOT NULL DEFAULT 0,
    bad           bigint NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, jurisdiction, file_sha256)
);

CREATE INDEX import_jobs_jurisdiction ON identity.import_jobs (jurisdiction, started_at DESC);

-- A job's bad rows, as they were, with every problem found: the error file is made from them.
CREATE TABLE identity.import_errors (
    job_id     uuid   NOT NULL,
    row_number bigint NOT NULL,
    cells      text[] NOT NULL,
    -- [{field, heading, reason}]
    problems   jsonb  NOT NULL,
    PRIMARY KEY (job_id, row_number)
);
