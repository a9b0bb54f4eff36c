-- Agent runtime: one row per model call (and per priced tool call), the source of costs and budgets.

CREATE TABLE llm_calls (
    id                 bigserial     PRIMARY KEY,
    at                 timestamptz   NOT NULL DEFAULT now(),
    kind               text          NOT NULL DEFAULT 'llm' CHECK (kind IN ('llm', 'tool')),
    agent              text          NOT NULL,
    step               text          NOT NULL,
    team               text,
    incident_id        uuid,
    provider           text          NOT NULL,
    model              text          NOT NULL,
    input_tokens       integer       NOT NULL DEFAULT 0,
    output_tokens      integer       NOT NULL DEFAULT 0,
    cache_read_tokens  integer       NOT NULL DEFAULT 0,
    cache_write_tokens integer       NOT NULL DEFAULT 0,
    cost_usd           numeric(14,8) NOT NULL DEFAULT 0,
    estimate_usd       numeric(14,8),
    latency_ms         integer       NOT NULL DEFAULT 0,
    attempts           integer       NOT NULL DEFAULT 1,
    outcome            text          NOT NULL
        CHECK (outcome IN ('ok', 'error', 'unavailable', 'budget_exceeded', 'invalid_output')),
    error              text,
    request_id         text
);
CREATE INDEX llm_calls_at ON llm_calls (at);
CREATE INDEX llm_calls_agent_at ON llm_calls (agent, at);
CREATE INDEX llm_calls_team_at ON llm_calls (team, at);
CREATE INDEX llm_calls_incident ON llm_calls (incident_id) WHERE incident_id IS NOT NULL;
