-- The national 学籍变动统计表 counts 退学, 开除, 失踪 and other departures each on its own, and
-- 恢复 after going missing apart from 恢复学籍 after a withdrawal: the feed names them so.
-- Events already fed keep the kinds they had ('departure').
ALTER TABLE identity.change_feed DROP CONSTRAINT change_feed_kind_check;
ALTER TABLE identity.change_feed ADD CONSTRAINT change_feed_kind_check CHECK (kind IN (
    'registration', 'transfer', 'suspension', 'resumption', 'dropout', 'return',
    'departure', 'withdrawal', 'expulsion', 'missing', 'found', 'reinstatement', 'abroad',
    'return_from_abroad', 'death', 'graduation', 'progression', 'promotion', 'correction',
    'succession', 'migration', 'deletion'));

CREATE OR REPLACE FUNCTION identity.feed_removal_kind(e identity.enrollments) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN e.status = 'transferred_out' THEN 'transfer'
        WHEN e.status = 'suspended' THEN 'suspension'
        WHEN e.status = 'dropped_out' THEN 'dropout'
        WHEN e.status = 'left' AND e.left_reason = 'abroad' THEN 'abroad'
        WHEN e.status = 'left' AND e.left_reason = 'withdrawal' THEN 'withdrawal'
        WHEN e.status = 'left' AND e.left_reason = 'expulsion' THEN 'expulsion'
        WHEN e.status = 'left' AND e.left_reason = 'missing' THEN 'missing'
        WHEN e.status = 'left' THEN 'departure'
        WHEN e.status IN ('graduated', 'completed', 'incomplete') THEN 'graduation'
        WHEN e.status = 'deceased' THEN 'death'
        WHEN e.status = 'deleted' THEN 'deletion'
        ELSE 'correction'
    END
$$;

CREATE OR REPLACE FUNCTION identity.feed_addition_kind(before identity.enrollments) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN before.status IN ('pending', 'awaiting_national_check') THEN 'registration'
        WHEN before.status = 'suspended' THEN 'resumption'
        WHEN before.status = 'dropped_out' THEN 'return'
        WHEN before.status = 'left' AND before.left_reason = 'abroad' THEN 'return_from_abroad'
        WHEN before.status = 'left' AND before.left_reason = 'missing' THEN 'found'
        WHEN before.status = 'left' THEN 'reinstatement'
        WHEN before.status = 'transferred_out' THEN 'transfer'
        ELSE 'correction'
    END
$$;

-- An enrollment a transfer opened counts as the return it is when the pupil was picked up
-- from a departure (0021_picked_up.sql): the same kinds a return at the old school would be.
CREATE OR REPLACE FUNCTION identity.feed_enrollments_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO identity.change_feed (student_id, happened_on, kind, from_place, to_place)
    SELECT n.student_id, identity.feed_day(),
           CASE WHEN n.continues IS NOT NULL THEN 'progression'
                WHEN n.picked_up_from = 'suspended' THEN 'resumption'
                WHEN n.picked_up_from = 'dropped_out' THEN 'return'
                WHEN n.picked_up_from = 'left' AND n.picked_up_left_reason = 'abroad'
                    THEN 'return_from_abroad'
                WHEN n.picked_up_from = 'left' AND n.picked_up_left_reason = 'missing'
                    THEN 'found'
                WHEN n.picked_up_from = 'left' THEN 'reinstatement'
                WHEN n.transfer_task IS NOT NULL THEN 'transfer'
                ELSE 'migration' END,
           NULL, identity.feed_place(n, s)
    FROM inserted n JOIN identity.students s ON s.id = n.student_id
    WHERE identity.feed_counts(n)
    ORDER BY n.id;
    RETURN NULL;
END $$;
