-- `pagerpatch dlq redrive`: when a dead letter was published again, so a repeated redrive of it does nothing.

ALTER TABLE dead_letters ADD COLUMN redriven_at timestamptz;
