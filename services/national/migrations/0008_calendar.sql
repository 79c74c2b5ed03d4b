-- The official working-day calendar as the ministry loads it, one row a year. `version` grows
-- with every load that changed something (across years), so provinces pull "after version N".
CREATE SEQUENCE national.calendar_version;

CREATE TABLE national.calendar_years (
    year      integer PRIMARY KEY,
    -- The schedule as `date,kind,name` lines (the format of the bundled calendar file).
    days_csv  text        NOT NULL,
    version   bigint      NOT NULL UNIQUE,
    loaded_by text        NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
