-- The notifier's view of each incident for the places people work (Slack thread, Linear issue): the facts every
-- stage reported, merged per stage (`facts || patch`), so the Slack root message is re-rendered whole at every
-- update; what was last rendered (a hash: a redelivery that changes nothing updates nothing); and when an approval
-- started and settled, for the sweep that opens a Linear issue for approvals waiting too long. The remote ids
-- (message ts, Linear issue) live in the outbox (0010).

CREATE TABLE notifier_threads (
    incident_id           uuid        PRIMARY KEY,
    team                  text,
    facts                 jsonb       NOT NULL DEFAULT '{}'::jsonb,
    rendered              jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- message ("root", "approval") -> hash shown
    approval_requested_at timestamptz,
    approval_settled_at   timestamptz,
    escalated_at          timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notifier_threads_waiting ON notifier_threads (approval_requested_at)
    WHERE approval_settled_at IS NULL AND escalated_at IS NULL AND approval_requested_at IS NOT NULL;
