-- One clock: a transfer's start and end are stamped from the node's clock, as its deadlines
-- are (see identity.clock_now: the node's pool sets `xueji.clock_offset_secs` when its clock
-- runs ahead of the system's; unset, this is now()).
CREATE FUNCTION transfers.clock_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT now() + make_interval(secs => coalesce(
        nullif(current_setting('xueji.clock_offset_secs', true), ''), '0')::double precision)
$$;

ALTER TABLE transfers.transfers ALTER COLUMN started_at SET DEFAULT transfers.clock_now();
