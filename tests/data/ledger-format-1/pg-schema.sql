-- The shared ledger's schema as the previous release (fec7934, orchestrator/pg_schema.py)
-- creates it in an empty database: its MIGRATIONS 1 and 2, in the order its migrate() runs
-- them. For tests/pg/test_schema_versions.py; never edit (it is the past).
CREATE TABLE IF NOT EXISTS orchestrator_schema (version integer NOT NULL);

-- migration 1
CREATE TABLE batches (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    flow        text NOT NULL,
    record      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE templates (
    sha256      text PRIMARY KEY,
    name        text NOT NULL,
    content     bytea NOT NULL,
    variables   text[] NOT NULL
);
CREATE TABLE rows (
    batch_id        bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    row_key         text NOT NULL,
    line            integer NOT NULL,
    flow            text NOT NULL,
    template_sha256 text REFERENCES templates (sha256),
    variables       jsonb NOT NULL,
    output          text NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    owner           text,
    account         text,
    lease_until     timestamptz,
    claims          integer NOT NULL DEFAULT 0,
    taken_from      text,
    taken_at        timestamptz,
    PRIMARY KEY (batch_id, row_key)
);
CREATE INDEX rows_pending ON rows (batch_id, line) WHERE status = 'pending';
CREATE INDEX rows_owner ON rows (owner) WHERE owner IS NOT NULL;
CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    batch_id    bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    row_key     text,
    body        jsonb NOT NULL
);
CREATE INDEX events_by_row ON events (batch_id, row_key, id);
CREATE TABLE rates (
    account     text PRIMARY KEY,
    next_at     timestamptz NOT NULL
);

INSERT INTO orchestrator_schema (version) VALUES (1);

-- migration 2
CREATE TABLE render_slots (
    account     text NOT NULL,
    slot        integer NOT NULL,
    owner       text,
    lease_until timestamptz,
    PRIMARY KEY (account, slot)
);

INSERT INTO orchestrator_schema (version) VALUES (2);
