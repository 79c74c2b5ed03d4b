-- 劝返: a pupil who left unplaced (辍学, a departure) and was later placed again by a school
-- keeps the record of having left, with the day and the school that took them back, so that
-- the county's list shows who was brought back, not only who is still out.
ALTER TABLE stats.students
    ADD COLUMN returned_on date,
    ADD COLUMN returned_to text,
    ADD CONSTRAINT returned_after_leaving
        CHECK ((returned_on IS NULL) = (returned_to IS NULL)
               AND (returned_on IS NULL OR left_on IS NOT NULL));
