-- A pupil who left school (休学, 辍学, a departure) may be picked up by another school with a
-- transfer from that state (劝返复学, 接收). The archived enrollment keeps the state the pupil
-- was in when the transfer took them (`departed_as`, with its `left_reason`), which a move to
-- another province carries; the new enrollment keeps the state it was taken from, so that its history and the statistics say it was a return, not an ordinary transfer,
-- and the decisions of the transfer that made it (each step's decider), so that the school
-- entry of the history names who approved the move rather than the service that applied it.
ALTER TABLE identity.enrollments
    ADD COLUMN departed_as text
        CHECK (departed_as IN ('suspended', 'dropped_out', 'left')),
    ADD COLUMN picked_up_from text
        CHECK (picked_up_from IN ('suspended', 'dropped_out', 'left')),
    ADD COLUMN picked_up_left_reason text
        CHECK (picked_up_left_reason IN ('withdrawal', 'expulsion', 'abroad', 'missing', 'other')),
    ADD COLUMN transfer_deciders text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT departed_as_only_when_transferred
        CHECK (departed_as IS NULL OR status = 'transferred_out'),
    ADD CONSTRAINT picked_up_by_a_transfer
        CHECK (picked_up_from IS NULL OR transfer_task IS NOT NULL),
    ADD CONSTRAINT a_left_reason_only_for_a_departure
        CHECK (picked_up_left_reason IS NULL OR picked_up_from = 'left');

-- The feed counts an enrollment a transfer opened from a departure as the return it is: see
-- `feed_enrollments_inserted` in 0023_removal_kinds.sql.

-- The registration's approval, kept apart from the last decision on the enrollment (which a
-- status change, a transfer or the national check overwrite), so that the history names who
-- approved the registration and when. Set once, by the database, whichever path approves.
ALTER TABLE identity.enrollments
    ADD COLUMN approved_at timestamptz,
    ADD COLUMN approved_by text;

-- Existing records: the last decision is the best the database still knows.
UPDATE identity.enrollments SET approved_at = decided_at, approved_by = decided_by
WHERE status NOT IN ('pending', 'rejected') AND decided_at IS NOT NULL;

CREATE FUNCTION identity.keep_registration_approval() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.approved_at IS NULL AND NEW.status NOT IN ('pending', 'rejected')
       AND (TG_OP = 'INSERT' OR OLD.status = 'pending') THEN
        NEW.approved_at := coalesce(NEW.decided_at, identity.clock_now());
        NEW.approved_by := NEW.decided_by;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER enrollments_keep_registration_approval
    BEFORE INSERT OR UPDATE OF status ON identity.enrollments
    FOR EACH ROW EXECUTE FUNCTION identity.keep_registration_approval();
