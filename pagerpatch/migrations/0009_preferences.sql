-- Preference pairs (docs/review.md): a person's decision on a fix waiting at the approval gate, with the diagnosis
-- and the patch they saw and their reason. Written by review in the decision's own transaction; one per approval.
-- `pagerpatch export preferences --format jsonl` reads them.

CREATE TABLE preferences (
    id          bigserial   PRIMARY KEY,
    incident_id uuid        NOT NULL UNIQUE,
    outcome     text        NOT NULL CHECK (outcome IN ('approved', 'rejected')),
    reason      text        NOT NULL DEFAULT '',
    decided_by  text        NOT NULL,
    channel     text        NOT NULL,
    repo        text        NOT NULL,
    strategy    text        NOT NULL,
    diagnosis   jsonb       NOT NULL,
    patch       text        NOT NULL,
    risk        jsonb       NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX preferences_decided_at ON preferences (decided_at);
