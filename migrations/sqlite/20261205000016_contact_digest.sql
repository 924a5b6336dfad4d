-- Keyed digests of a record's contact, one per channel (the root key's blind index,
-- labels `mobile` and `email`): whether a new version of a record changed a contact,
-- and whether what the broker learnt of a channel (a bounce, an undeliverable SMS)
-- is about the contact a record holds now, without opening either. When a new version
-- changes a contact, every airline shown the old one is asked to erase it
-- (`contact_changed`). Destroyed with the contact on a purge; records stored before
-- this have none and are never compared. The twin in ../postgres differs only in types.
ALTER TABLE consents ADD COLUMN mobile_digest BLOB;
ALTER TABLE consents ADD COLUMN email_digest BLOB;
