-- Kernel tables: checkpoints, dead letters, audit log, ingest delivery ids.

CREATE TABLE checkpoints (
    event_id     uuid        NOT NULL,
    stage        text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('started', 'done', 'dead')),
    event_type   text        NOT NULL,
    incident_id  uuid,
    attempts     integer     NOT NULL DEFAULT 1,
    outputs      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    last_error   text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (event_id, stage)
);
CREATE INDEX checkpoints_incident ON checkpoints (incident_id);

CREATE TABLE dead_letters (
    id           bigserial   PRIMARY KEY,
    consumer     text        NOT NULL,
    stream       text        NOT NULL,
    stream_seq   bigint      NOT NULL,
    subject      text        NOT NULL,
    event_id     uuid,
    reason       text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('poison', 'max_deliveries')),
    deliveries   integer,
    data         text        NOT NULL DEFAULT '',
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer, stream, stream_seq)
);

CREATE TABLE audit_log (
    id           bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    action       text        NOT NULL,
    incident_id  uuid,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE delivery_ids (
    source       text        NOT NULL,
    delivery_id  text        NOT NULL,
    event_id     uuid        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, delivery_id)
);
