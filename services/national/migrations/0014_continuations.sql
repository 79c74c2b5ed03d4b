-- 升学 across provinces: a record that finished its stage (graduated, completed, incomplete)
-- is `finished` in the index, not live for the duplicate check, and another province's claim
-- on its ID number continues the student there; the old province is told with a
-- `continued_elsewhere` notice.
ALTER TABLE national.students DROP CONSTRAINT students_status_check;
ALTER TABLE national.students ADD CONSTRAINT students_status_check
    CHECK (status IN ('pending', 'active', 'ended', 'finished'));
ALTER TABLE national.notices DROP CONSTRAINT notices_kind_check;
ALTER TABLE national.notices ADD CONSTRAINT notices_kind_check
    CHECK (kind IN ('duplicate_id_number', 'duplicate_name', 'cleared_duplicate_id_number',
                    'cleared_duplicate_name', 'continued_elsewhere'));
