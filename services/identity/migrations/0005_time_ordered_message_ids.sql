-- Outbox message ids in time order. A message id is a UUID fixed when the message is written, so
-- that the national node applies it once however often it is delivered; the national inbox is
-- keyed by it, and every delivered message inserts into that key. A random (version 4) id lands
-- on a random page of the index, so during intake each insert touches a page that is rarely in
-- cache and splits pages all over the index. Ids whose first 48 bits are the time of writing in
-- milliseconds (the layout of RFC 9562 version 7) are appended at the index's right edge
-- instead. The other 74 bits stay random: two ids drawn in the same millisecond collide with odds
-- of about one in 10^22.

CREATE FUNCTION identity.time_ordered_uuid() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        -- Version nibble (bits 52-55 of byte 6, least significant first) from 4 to 7; the
        -- variant bits of the random id are already right.
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

ALTER TABLE identity.outbox ALTER COLUMN message_id SET DEFAULT identity.time_ordered_uuid();
