-- Breakdown counts, the students' last known places (dropout monitoring, data-quality lists)
-- and, on the national node, the provinces' reported aggregates.

-- Students added (+) and removed (-) per unit, day and breakdown cell: a count at a date is
-- the sum of the rows up to it. dimension: gender, grade, grade_gender, stage, ethnicity,
-- entry_route, migrant_child, left_behind_child.
CREATE TABLE stats.daily_cells (
    unit      text   NOT NULL,
    dimension text   NOT NULL,
    value     text   NOT NULL,
    day       date   NOT NULL,
    students  bigint NOT NULL,
    PRIMARY KEY (unit, dimension, value, day)
);

-- Each school's county, as the feed last placed it: which schools an area holds.
CREATE TABLE stats.schools (
    school text PRIMARY KEY,
    county text NOT NULL
);
CREATE INDEX schools_county ON stats.schools (county);

-- Each student's last known place, from the feed (kept in the province; never reported to
-- the national node). left_*: set when the student's enrollment ended in a way that needs
-- another school to pick the student up (dropout, departure); cleared when one does.
CREATE TABLE stats.students (
    student         text    PRIMARY KEY,
    registry_number text    NOT NULL,
    name            text    NOT NULL,
    counted         boolean NOT NULL,
    school          text,
    county          text,
    grade           smallint,
    birth_date      date,
    ethnicity       text,
    entry_route     text,
    -- Key fields the record lacks, comma-separated (data-quality lists).
    missing         text    NOT NULL DEFAULT '',
    left_on         date,
    left_kind       text,
    left_school     text,
    left_county     text,
    CHECK ((left_on IS NULL) = (left_county IS NULL))
);
CREATE INDEX students_left ON stats.students (left_county) WHERE left_on IS NOT NULL;
CREATE INDEX students_counted_school ON stats.students (school) WHERE counted;
CREATE INDEX students_missing ON stats.students (county) WHERE counted AND missing <> '';

-- On the national node: when each province last reported its aggregates, at which feed
-- position. Its rows are in monthly_changes under its province, city and county units.
CREATE TABLE stats.province_reports (
    province    text        PRIMARY KEY,
    position    bigint      NOT NULL,
    reported_at timestamptz NOT NULL,
    rows        integer     NOT NULL
);
