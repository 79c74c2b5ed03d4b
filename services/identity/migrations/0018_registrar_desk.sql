-- The registrar's desk: the September queue of pending registrations by county, and the
-- search a registrar runs when a parent calls (by name, guardian name or phone). Each index
-- serves one of those reads; the document-number part is matched inside the other criteria
-- or the caller's scope.
CREATE INDEX enrollments_pending ON identity.enrollments (school_division, student_id)
    WHERE is_current AND status = 'pending';
CREATE INDEX students_name ON identity.students (name);
CREATE INDEX students_guardian_name ON identity.students ((guardian->>'name'));
CREATE INDEX students_guardian_phone ON identity.students ((guardian->>'phone'));
