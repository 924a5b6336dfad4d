-- The rows a disruption writes by the thousand keep one reference each, to the row
-- they hang on, and drop those that restate it. On PostgreSQL every foreign-key
-- check locks the parent row (FOR KEY SHARE): a write to the parent's page per
-- checked row, and a lock that brokers sharing the database contend on. A flight of
-- 400 tokens made 1,600 such checks, 60 % of the time of inserting them.
--
-- What is dropped restates the row kept, and none of those parents is ever deleted
-- (parties, bookings, travellers, consents and tokens are marked, not removed):
-- - a token hangs on its consent record, which names the traveller, the booking and
--   (with the token's own airline, written from the same read) who it is for;
-- - a message hangs on its token, which names the airline, consent and traveller;
-- - a consent hangs on its traveller, whose booking names the agency.
-- The SQLite twin in ../sqlite keeps them: there a check is a read in the writer's
-- own transaction, with no lock to take.
ALTER TABLE release_tokens DROP CONSTRAINT IF EXISTS release_tokens_airline_id_fkey;
ALTER TABLE release_tokens DROP CONSTRAINT IF EXISTS release_tokens_traveller_id_fkey;
ALTER TABLE release_tokens DROP CONSTRAINT IF EXISTS release_tokens_booking_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_airline_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_agency_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_consent_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_traveller_id_fkey;
ALTER TABLE consents DROP CONSTRAINT IF EXISTS consents_agency_id_fkey;
