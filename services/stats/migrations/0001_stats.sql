-- The statistics service's own tables, fed by the enrollment events of identity and
-- transfers. No other service reads them; they hold figures, never individual records.

-- How far each feed has been applied: an event at or before it is a redelivery.
CREATE TABLE stats.feed_positions (
    source   text   PRIMARY KEY,
    position bigint NOT NULL
);

-- Students added to and removed from each unit's count, per month and kind: what a monthly
-- change report reads (the opening count is the net of the months before).
-- unit: "nation", "province:35", "city:3501", "county:350102" or "school:<code>".
CREATE TABLE stats.monthly_changes (
    unit      text   NOT NULL,
    month     date   NOT NULL CHECK (extract(day FROM month) = 1),
    direction text   NOT NULL CHECK (direction IN ('addition', 'removal')),
    kind      text   NOT NULL,
    students  bigint NOT NULL,
    PRIMARY KEY (unit, month, direction, kind)
);
