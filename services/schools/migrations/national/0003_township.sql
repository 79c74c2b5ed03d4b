-- The township (乡镇/街道) a school lies in: 9 digits, its county's 6 and 3 more; NULL where
-- not recorded. Province rules compare it (no compulsory-stage transfer inside one township).
ALTER TABLE schools_national.schools ADD COLUMN township text
    CHECK (township ~ '^[0-9]{9}$' AND left(township, 6) = division);

CREATE OR REPLACE FUNCTION schools_national.school_extras(
    s schools_national.schools,
    OUT profile jsonb, OUT former_names text[], OUT replaced_on date[], OUT successors text[])
LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'name', s.name, 'category', s.category, 'stages', s.stages,
               'division', s.division, 'registry_authority', s.registry_authority,
               'operator_type', s.operator_type, 'address', s.address,
               'township', s.township)),
           ARRAY(SELECT f.name FROM schools_national.former_names f
                 WHERE f.code = s.code ORDER BY f.replaced_on, f.recorded_at),
           ARRAY(SELECT f.replaced_on FROM schools_national.former_names f
                 WHERE f.code = s.code ORDER BY f.replaced_on, f.recorded_at),
           ARRAY(SELECT l.successor FROM schools_national.lineage l
                 WHERE l.predecessor = s.code ORDER BY l.successor)
$$;
