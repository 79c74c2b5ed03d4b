-- The outbox is found by sequence and written once per change during intake: every index it
-- carries is paid for by every registration.
--
-- Message ids are random UUIDs, unique for the national inbox (which keys on them); the province
-- never looks a message up by its id, so it no longer keeps a unique index on it. Deliveries are
-- serialized by an advisory lock instead of locking each row they carry.
ALTER TABLE identity.outbox DROP CONSTRAINT outbox_message_id_key;
