-- The duplicate digest (SHA-256 of name, gender and birth date) as its 32 bytes instead of 64 hex
-- characters. Every indexed student carries one, in the row and in the index that finds name
-- duplicates across provinces; digests are random, so each new one lands on a random page of that
-- index, and half the key size is half the pages to keep in memory and to split. The API still
-- speaks hex; the statements convert at the boundary. An empty digest (a student first known
-- from an ID-number claim, before its index message) stays empty.
ALTER TABLE national.students
    ALTER COLUMN duplicate_digest TYPE bytea USING decode(duplicate_digest, 'hex');
