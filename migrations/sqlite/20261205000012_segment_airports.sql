-- Where each segment flies from and to, when the agency's PNR says: an airline
-- declaring an airport's closure disrupts its flights from or to it in a time window.
-- Optional: segments uploaded without them are reached by flight only. The PostgreSQL
-- twin in ../postgres is the same.
ALTER TABLE segments ADD COLUMN origin TEXT;
ALTER TABLE segments ADD COLUMN destination TEXT;

-- A disruption declared as an airport's closure keeps it: the airport and the window
-- of departure dates its flights were drawn from.
ALTER TABLE disruptions ADD COLUMN closure_airport TEXT;
ALTER TABLE disruptions ADD COLUMN closure_from TEXT;
ALTER TABLE disruptions ADD COLUMN closure_until TEXT;
