-- The notifier's outbox: one row per side effect in the outside world (a GitHub pull request, a Slack root
-- message, a Linear issue), keyed (incident, kind, target) and performed once. A row is written 'pending' before
-- the remote call and 'done' with the remote id after it; a retry of a pending row first looks the effect up
-- remotely, so a crash between the remote call and the record never duplicates it (services/notifier/outbox.py).

CREATE TABLE outbox (
    id            bigserial   PRIMARY KEY,
    incident_id   uuid        NOT NULL,
    kind          text        NOT NULL,
    target        text        NOT NULL,
    state         text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    remote_id     text,
    remote_url    text        NOT NULL DEFAULT '',
    detail        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    done_at       timestamptz,
    UNIQUE (incident_id, kind, target)
);

CREATE INDEX outbox_open ON outbox (state, updated_at) WHERE state <> 'done';
