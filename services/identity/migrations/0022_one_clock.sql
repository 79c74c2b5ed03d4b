-- One clock: the dates the database stamps (registrations, decisions, the statistics' feed)
-- come from the node's clock, as deadlines and entry dates do. The node's pool sets
-- `xueji.clock_offset_secs` on a connection when its clock runs ahead of the system's (a test
-- federation living through weeks); unset, this is now().
CREATE FUNCTION identity.clock_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT now() + make_interval(secs => coalesce(
        nullif(current_setting('xueji.clock_offset_secs', true), ''), '0')::double precision)
$$;

CREATE OR REPLACE FUNCTION identity.feed_day() RETURNS date LANGUAGE sql STABLE AS
$$ SELECT (identity.clock_now() AT TIME ZONE 'Asia/Shanghai')::date $$;

ALTER TABLE identity.students ALTER COLUMN registered_at SET DEFAULT identity.clock_now();
ALTER TABLE identity.registry_numbers ALTER COLUMN issued_at SET DEFAULT identity.clock_now();
ALTER TABLE identity.status_changes ALTER COLUMN requested_at SET DEFAULT identity.clock_now();
ALTER TABLE identity.detail_updates ALTER COLUMN updated_at SET DEFAULT identity.clock_now();
