-- A merger or a category change voids school codes; their students follow to the code that
-- carries on. One row per voided code the identity service has moved: the row makes the move
-- happen once, and the highest (version, predecessor) is where it resumes reading the
-- school replica's successions.
CREATE TABLE identity.school_successions (
    predecessor    text PRIMARY KEY,
    successor      text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('merge', 'category_change')),
    effective_date date NOT NULL,
    -- The publication that voided the code.
    version        bigint NOT NULL,
    -- Current enrollments moved.
    students_moved bigint NOT NULL,
    moved_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX school_successions_order ON identity.school_successions (version, predecessor);
