-- Repositories registered at run time (`pagerpatch repos add`, `pagerpatch demo`), besides those in config.
CREATE TABLE repos (
    name        text        PRIMARY KEY,
    config      jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
