-- Triage: recent alert history per group (flapping, spikes, open-after-N, blast radius) and the decision taken
-- for each alert, so a re-run of the same alert returns the same decision (exactly-once in effect).
-- Bounded: triage reads at most `history_max_per_group` rows of `history_window_s`, and prunes rows older than
-- `history_retention_s` and beyond the per-group cap.

CREATE TABLE alert_observations (
    event_id     uuid        PRIMARY KEY,          -- the alert.received event
    group_key    text        NOT NULL,             -- the incident family (incidents.fingerprint)
    fingerprint  text        NOT NULL,             -- this alert's own identity within the family
    service      text        NOT NULL,
    resource     text,
    status       text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    observed_at  timestamptz NOT NULL,             -- when the alert happened (provider time)
    decision     text        NOT NULL CHECK (decision IN ('real', 'noise', 'duplicate')),
    severity     text        NOT NULL,
    rules        text[]      NOT NULL DEFAULT '{}', -- rule names that fired
    reasons      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    incident_id  uuid,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_observations_group ON alert_observations (group_key, observed_at DESC);
CREATE INDEX alert_observations_incident ON alert_observations (incident_id) WHERE incident_id IS NOT NULL;
CREATE INDEX alert_observations_recorded ON alert_observations (recorded_at);
