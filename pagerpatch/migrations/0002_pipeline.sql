-- Pipeline state: incidents (the source of truth), their timeline, approvals, pull requests, notifications.

CREATE TABLE incidents (
    id            uuid        PRIMARY KEY,
    fingerprint   text        NOT NULL,
    state         text        NOT NULL,
    title         text        NOT NULL,
    service       text        NOT NULL,
    severity      text        NOT NULL,
    repo          text,
    team          text,
    occurrences   integer     NOT NULL DEFAULT 1,
    reasons       jsonb       NOT NULL DEFAULT '[]'::jsonb,
    opened_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    closed_at     timestamptz,
    outcome       text
);
CREATE INDEX incidents_fingerprint ON incidents (fingerprint, last_seen_at DESC);
-- One live incident per fingerprint: the hard dedup block that concurrent triage replicas cannot race past.
CREATE UNIQUE INDEX incidents_one_live_per_fingerprint ON incidents (fingerprint)
    WHERE state NOT IN ('resolved', 'rejected', 'failed', 'pr_closed');

CREATE TABLE incident_events (
    event_id     uuid        PRIMARY KEY,
    incident_id  uuid        NOT NULL,
    type         text        NOT NULL,
    source       text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    summary      text        NOT NULL DEFAULT ''
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, occurred_at);

CREATE TABLE approvals (
    incident_id   uuid        PRIMARY KEY,
    status        text        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    risk          jsonb       NOT NULL,
    fix           jsonb       NOT NULL,
    request_event_id uuid     NOT NULL,
    decided_by    text,
    reason        text,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz
);

CREATE TABLE pull_requests (
    id            bigserial   PRIMARY KEY,
    incident_id   uuid        NOT NULL UNIQUE,
    repo          text        NOT NULL,
    provider      text        NOT NULL,
    branch        text        NOT NULL,
    head_commit   text        NOT NULL,
    title         text        NOT NULL,
    body          text        NOT NULL,
    url           text        NOT NULL,
    number        integer,
    state         text        NOT NULL DEFAULT 'open',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
    id              bigserial   PRIMARY KEY,
    about_event_id  uuid        NOT NULL,
    channel         text        NOT NULL,
    kind            text        NOT NULL,
    target          text        NOT NULL DEFAULT '',
    text            text        NOT NULL,
    incident_id     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (about_event_id, channel, kind)
);
