-- DESIGN §4, problem (3): a name duplicate between provinces is a problem only when one of the
-- two records has no ID number. The pairs flagged before this rule whose two records both
-- carry one are cleared: each side's province is told to drop its flag (a cleared notice, as
-- when a province resolves the pair), and the original notices stay so that the pair is never
-- flagged again.
DO $$
DECLARE
    pair record;
    next_sequence bigint;
BEGIN
    FOR pair IN
        SELECT n.province, n.registry_number, n.other_province, n.other_registry_number
        FROM national.notices n
        JOIN national.students mine ON mine.registry_number = n.registry_number
        JOIN national.students other ON other.registry_number = n.other_registry_number
        WHERE n.kind = 'duplicate_name'
          AND mine.id_digest IS NOT NULL AND other.id_digest IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM national.notices c
              WHERE c.province = n.province AND c.registry_number = n.registry_number
                AND c.kind = 'cleared_duplicate_name'
                AND c.other_registry_number = n.other_registry_number)
        ORDER BY n.province, n.sequence
    LOOP
        INSERT INTO national.notice_counters (province, last) VALUES (pair.province, 1)
        ON CONFLICT (province) DO UPDATE SET last = national.notice_counters.last + 1
        RETURNING last INTO next_sequence;
        INSERT INTO national.notices
            (province, sequence, registry_number, kind, other_province, other_registry_number,
             detail)
        VALUES (pair.province, next_sequence, pair.registry_number, 'cleared_duplicate_name',
                pair.other_province, pair.other_registry_number,
                'namesakes with two ID numbers are two children (DESIGN §4)');
        PERFORM audit.record('migration:national-0013', pair.province || '0000',
                             'national.notice', 'number:' || pair.registry_number, NULL,
                             jsonb_build_object('province', pair.province,
                                                'kind', 'cleared_duplicate_name',
                                                'other_province', pair.other_province,
                                                'other_registry_number',
                                                pair.other_registry_number),
                             '');
    END LOOP;
END
$$;
