-- A keyed digest of a record's contact (its mobile and email, under the root key's
-- blind index, label `contact`): whether a new version of a record changed the
-- contact, without opening either. When it did, every airline shown the old contact
-- is asked to erase it (`contact_changed`). Destroyed with the contact on a purge;
-- records stored before this have none and are never compared. The twin in ../postgres
-- differs only in types.
ALTER TABLE consents ADD COLUMN contact_digest BLOB;
