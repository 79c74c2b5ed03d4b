-- Calendar years the ministry loaded on the national node, as this province pulled them: they
-- replace the bundled years of the same number. `version` is the national version of the load.
CREATE TABLE transfers.calendar_years (
    year        integer     PRIMARY KEY,
    -- The schedule as `date,kind,name` lines (the format of the bundled calendar file).
    days_csv    text        NOT NULL,
    version     bigint      NOT NULL,
    loaded_by   text        NOT NULL,
    loaded_at   timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
