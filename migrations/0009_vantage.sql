-- Vantage points (methodology section 10): which node saw each observation. Probes carry the
-- `[monitor] id` of the node that sent them; gateway logs are the bank's own side, `gateway`.
ALTER TABLE observations ADD COLUMN vantage TEXT NOT NULL DEFAULT 'monitor';
-- Rows from before: logs are the gateway's; a probe row is the monitor run's whose heartbeat
-- spans it (the latest started one), else 'monitor' (a probe export imported from a file).
UPDATE observations SET vantage = 'gateway' WHERE source = 'log';
UPDATE observations SET vantage = COALESCE(
    (SELECT h.monitor_id FROM heartbeats h
      WHERE h.started_at <= observations.received_at
        AND observations.received_at <= COALESCE(h.stopped_at, h.last_beat) + 60000
      ORDER BY h.started_at DESC LIMIT 1),
    'monitor')
WHERE source = 'probe';
