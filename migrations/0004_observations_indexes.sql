-- Indexes that suit how observations arrive and are read.
-- The identity key leads with the establishment and the time: rows arrive in time order per
-- establishment, so inserts land at the end of the index instead of at random places (request
-- ids are random UUIDs), which kept large imports slow. Uniqueness is unchanged: the same
-- three columns. Reads of a period filter on time and establishment: this index and
-- `observations_time` serve them, so the series index only cost inserts.
DROP INDEX observations_identity;
CREATE UNIQUE INDEX observations_identity ON observations (establishment, received_at, request_id);
DROP INDEX observations_series;
