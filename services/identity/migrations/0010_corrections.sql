-- Key-field corrections ride the status-change workflow: a request of kind `correction` holds
-- the student's pending-task lock like any other, and carries the fields it corrects.

-- The student's photo: an image evidence file of the student, set by a correction.
ALTER TABLE identity.students ADD COLUMN photo uuid;

-- Each corrected field, its value when asked and the value asked for: [{field, from, to}].
ALTER TABLE identity.status_changes ADD COLUMN corrections jsonb;
ALTER TABLE identity.status_changes ADD CONSTRAINT status_changes_corrections
    CHECK ((kind = 'correction') = (corrections IS NOT NULL));

ALTER TABLE identity.pending_tasks DROP CONSTRAINT pending_tasks_kind_check;
ALTER TABLE identity.pending_tasks ADD CONSTRAINT pending_tasks_kind_check
    CHECK (kind IN ('transfer', 'status_change', 'correction'));
