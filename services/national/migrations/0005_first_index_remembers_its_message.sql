-- A student's first index entry remembers the message that introduced it, instead of the inbox
-- keeping a row for that message. Nearly every message of an intake introduces a student, and
-- its inbox row (a heap tuple and a primary-key entry, about a fifth of the national index's WAL
-- per student) recorded nothing the entry cannot: that the message was applied. A redelivered
-- introduction finds its number indexed with its own message id and answers `applied` again.
-- Every other message (updates, claims, releases, refusals, introductions that went one by one)
-- still has its inbox row and stored outcome.
ALTER TABLE national.students ADD COLUMN introduced_by uuid;
