-- A province that resolved a cross-province problem tells the index; the other province then
-- pulls a `cleared_*` notice for the pair and drops its flag.
ALTER TABLE national.notices DROP CONSTRAINT notices_kind_check;
ALTER TABLE national.notices ADD CONSTRAINT notices_kind_check
    CHECK (kind IN ('duplicate_id_number', 'duplicate_name',
                    'cleared_duplicate_id_number', 'cleared_duplicate_name'));
