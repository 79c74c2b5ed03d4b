-- The enrollment side of transfers.

-- A transferred-out enrollment is the sending school's archived copy; it is no longer current.
ALTER TABLE identity.enrollments DROP CONSTRAINT enrollments_status_check;
ALTER TABLE identity.enrollments ADD CONSTRAINT enrollments_status_check
    CHECK (status IN ('pending', 'awaiting_national_check', 'active', 'rejected', 'transferred_out'));

-- The transfer an enrollment was opened by (at the receiving school): completing a transfer
-- twice finds it.
ALTER TABLE identity.enrollments ADD COLUMN transfer_task uuid;
CREATE UNIQUE INDEX enrollments_opened_by_transfer ON identity.enrollments (transfer_task)
    WHERE transfer_task IS NOT NULL;

-- Pending tasks (在办业务): at most one unfinished workflow per student, whatever its kind. The
-- primary key is the lock.
CREATE TABLE identity.pending_tasks (
    student_id bigint PRIMARY KEY,
    task_id    uuid   NOT NULL UNIQUE,
    kind       text   NOT NULL CHECK (kind IN ('transfer')),
    since      timestamptz NOT NULL DEFAULT now()
);
