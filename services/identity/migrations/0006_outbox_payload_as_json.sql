-- Outbox payloads as json, the text as built, instead of jsonb: nothing looks inside them in the
-- database, and the deliverer reads them as text. As jsonb every registration's message was
-- built in binary form and printed back to text for delivery. Rewrites the table once.
ALTER TABLE identity.outbox ALTER COLUMN payload TYPE json USING payload::text::json;
