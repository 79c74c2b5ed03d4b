-- A number row is written by the same statement as its student (or by one that has just locked
-- that student), and students are never deleted: the foreign key only re-checked that on every
-- insert, taking a share lock on the student row each time. Identity's registry numbers follow
-- the same rule.
ALTER TABLE national.numbers DROP CONSTRAINT numbers_student_id_fkey;
