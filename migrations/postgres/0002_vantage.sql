-- Vantage points (methodology section 10; SQLite migration 0009): which node saw each
-- observation. Probes carry the `[monitor] id` of the node that sent them; gateway logs are the
-- bank's own side, `gateway`. Rows from before: logs are the gateway's; a probe row is the
-- monitor run's whose heartbeat spans it (the latest started one), else 'monitor'.
ALTER TABLE observations ADD COLUMN vantage TEXT NOT NULL DEFAULT 'monitor';
UPDATE observations SET vantage = 'gateway' WHERE source = 'log';
UPDATE observations SET vantage = COALESCE(
    (SELECT h.monitor_id FROM heartbeats h
      WHERE h.started_at <= observations.received_at
        AND observations.received_at <= COALESCE(h.stopped_at, h.last_beat) + 60000
      ORDER BY h.started_at DESC LIMIT 1),
    'monitor')
WHERE source = 'probe';
