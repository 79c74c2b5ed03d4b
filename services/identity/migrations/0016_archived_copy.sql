-- The sending school's archived copy stays as it stood at the move: when a transfer inside the
-- province closes the sending enrollment, the student's personal fields as they were then are
-- kept with it, and the former school reads those, not what the receiving school later
-- corrects (a new name, a corrected birth date). Enrollments archived before this migration
-- have none and read the live fields, as before.
ALTER TABLE identity.enrollments ADD COLUMN archived_person jsonb;
