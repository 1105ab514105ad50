-- Outbox hygiene (issue 13.6): a notice given up after the retry limit is kept, marked
-- abandoned, and no longer holds back the later notices of its alert on its channel.
ALTER TABLE alert_deliveries ADD COLUMN abandoned_at INTEGER;
