-- Every student's current number is also in national.numbers, written in the same statement
-- (or right after locking the student), and numbers' primary key keeps every number, current or
-- alias, unique for good. Nothing looks a student up by this column; the second unique index
-- only cost each indexed student one more index entry.
ALTER TABLE national.students DROP CONSTRAINT students_registry_number_key;
