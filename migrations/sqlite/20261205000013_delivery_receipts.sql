-- What the SMS gateway says became of a message it accepted (its signed delivery
-- receipt): `delivered`, `undeliverable` (with the gateway's reason) or `expired`, and
-- when. A message's `status` stays what the broker did (`delivered`: the gateway
-- accepted it); the receipt is what reached the phone. The PostgreSQL twin in
-- ../postgres differs only in types.
ALTER TABLE messages ADD COLUMN receipt_status TEXT;
ALTER TABLE messages ADD COLUMN receipt_reason TEXT;
ALTER TABLE messages ADD COLUMN receipt_at INTEGER;
