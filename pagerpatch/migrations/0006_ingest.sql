-- Ingest's delivery ids: claimed before publishing, marked once JetStream acknowledged every event of the delivery.
-- A retry of a claimed-but-unpublished delivery (the bus was down) is published again; a published one never is.

ALTER TABLE delivery_ids ADD COLUMN published_at timestamptz;
ALTER TABLE delivery_ids ADD COLUMN attempts integer NOT NULL DEFAULT 1;
UPDATE delivery_ids SET published_at = received_at;  -- rows written before 0006 were recorded after the PubAck
CREATE INDEX delivery_ids_received_at ON delivery_ids (received_at);
