-- One index on observations, led by time.
-- The identity key (what makes imports idempotent) was led by the request id, a random UUID, so
-- every insert landed at a random place of the index and large imports slowed to a crawl. Led
-- by the time, inserts append at the end (rows arrive in time order), and the same index serves
-- every read, which selects a period (and maybe some establishments): the separate time and
-- series indexes only cost inserts. Uniqueness is unchanged: the same three columns.
DROP INDEX observations_identity;
DROP INDEX observations_series;
DROP INDEX observations_time;
CREATE UNIQUE INDEX observations_identity ON observations (received_at, establishment, request_id);
