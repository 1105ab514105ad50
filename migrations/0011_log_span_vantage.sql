-- Imported probes of several vantages (methodology section 10): a probe CSV naming its rows'
-- vantage (`vantage` column) covers each series a named vantage probed, over the file's span,
-- as that vantage's own coverage (as if it had been a monitor run), one row per file, series and
-- vantage. NULL: the gateway's (logs, and probe rows naming no vantage), shared by every vantage.
ALTER TABLE log_spans ADD COLUMN vantage TEXT;
