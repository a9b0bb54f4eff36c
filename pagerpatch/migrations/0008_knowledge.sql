-- Knowledge base (pagerpatch/knowledge, docs/knowledge.md): guidelines, knowledge and runbooks indexed from the
-- Markdown folder by `pagerpatch knowledge sync`, searched with Postgres full-text search.

CREATE TABLE knowledge_entries (
    id            bigserial    PRIMARY KEY,
    kind          text         NOT NULL CHECK (kind IN ('guideline', 'knowledge', 'runbook')),
    keyword       text         NOT NULL UNIQUE,
    description   text         NOT NULL,
    tags          text[]       NOT NULL DEFAULT '{}',
    alerts        text[]       NOT NULL DEFAULT '{}',
    path          text         NOT NULL,
    body          text         NOT NULL,
    content_hash  text         NOT NULL,
    -- keyword and tags weigh most, then the description, then the body (written by the sync, 'english' config)
    search        tsvector     NOT NULL,
    synced_at     timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_entries_search ON knowledge_entries USING GIN (search);
CREATE INDEX knowledge_entries_kind ON knowledge_entries (kind, keyword);
CREATE INDEX knowledge_entries_path ON knowledge_entries (path);
