-- The national node's own tables. No other service reads them.

-- The province directory: how to reach each province and which identity it presents.
CREATE TABLE national.provinces (
    code       text PRIMARY KEY CHECK (code ~ '^[0-9]{2}$'),
    name       text NOT NULL,
    address    text NOT NULL,
    identity   text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per student known to the national index: which province owns it, its current
-- number and status. No personal data beyond the digest used for duplicate detection.
CREATE TABLE national.students (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    province         text NOT NULL,
    registry_number  text NOT NULL UNIQUE,
    -- The resident ID number the province reported (claimed or not).
    id_number        text,
    -- Hex SHA-256 of "name|gender|birth date" (NFC): equal digests are possible duplicates.
    duplicate_digest text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'active', 'ended')),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX students_duplicate_digest ON national.students (duplicate_digest);
CREATE INDEX students_id_number ON national.students (id_number) WHERE id_number IS NOT NULL;

-- Every number ever indexed, current or alias: a number belongs to one student for good.
CREATE TABLE national.numbers (
    number     text PRIMARY KEY,
    student_id bigint NOT NULL REFERENCES national.students (id)
);

CREATE INDEX numbers_student ON national.numbers (student_id);

-- The national duplicate check: one owner per resident ID number. The primary key decides
-- between concurrent claims from different provinces.
CREATE TABLE national.id_claims (
    id_number  text PRIMARY KEY,
    student_id bigint NOT NULL REFERENCES national.students (id),
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- Messages already applied, with the outcome answered: a redelivery answers the same and
-- applies nothing.
CREATE TABLE national.inbox (
    message_id  uuid PRIMARY KEY,
    province    text NOT NULL,
    kind        text NOT NULL,
    outcome     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Problems found across provinces, queued for the province concerned, which pulls them in
-- sequence order. Sequences count per province from a counter row whose lock orders the writers,
-- so a notice never commits behind one with a higher sequence (a puller would skip it).
CREATE TABLE national.notice_counters (
    province text PRIMARY KEY,
    last     bigint NOT NULL
);

CREATE TABLE national.notices (
    province              text NOT NULL,
    sequence              bigint NOT NULL,
    registry_number       text NOT NULL,
    kind                  text NOT NULL CHECK (kind IN ('duplicate_id_number', 'duplicate_name')),
    other_province        text NOT NULL,
    other_registry_number text NOT NULL,
    detail                text NOT NULL,
    noticed_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (province, sequence),
    UNIQUE (province, registry_number, kind, other_registry_number)
);
