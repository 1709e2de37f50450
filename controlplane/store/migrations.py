"""Versioned schema migrations. Append new versions; never edit a released one."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: workflows, runs (workflow executions), steps (agent executions), attempts (placements),
    #    nodes, modules, events.
    """
    CREATE TABLE workflows (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        version     TEXT NOT NULL,
        digest      TEXT NOT NULL UNIQUE,
        spec_json   TEXT NOT NULL,
        source_yaml TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX workflows_name ON workflows(name, version);

    CREATE TABLE runs (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL UNIQUE,
        workflow_id TEXT NOT NULL REFERENCES workflows(id),
        status      TEXT NOT NULL,
        input_json  TEXT NOT NULL,
        error       TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX runs_status ON runs(status);

    CREATE TABLE steps (
        run_id        TEXT NOT NULL REFERENCES runs(id),
        name          TEXT NOT NULL,
        idx           INTEGER NOT NULL,
        depends_on    TEXT NOT NULL,
        status        TEXT NOT NULL,
        attempt       INTEGER NOT NULL DEFAULT 0,
        max_attempts  INTEGER NOT NULL,
        failures      INTEGER NOT NULL DEFAULT 0,
        losses        INTEGER NOT NULL DEFAULT 0,
        cpu_millis    INTEGER NOT NULL,
        memory_bytes  INTEGER NOT NULL,
        node_selector TEXT NOT NULL,
        node_id       TEXT,
        output_json   TEXT,
        error         TEXT NOT NULL DEFAULT '',
        exit_code     INTEGER NOT NULL DEFAULT 0,
        stderr        TEXT NOT NULL DEFAULT '',
        blocked       TEXT NOT NULL DEFAULT '',
        not_before    TEXT,
        started_at    TEXT,
        finished_at   TEXT,
        PRIMARY KEY (run_id, name)
    );
    CREATE INDEX steps_status ON steps(status);
    CREATE INDEX steps_node ON steps(node_id, status);

    CREATE TABLE attempts (
        run_id      TEXT NOT NULL,
        step        TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        node_id     TEXT NOT NULL,
        status      TEXT NOT NULL,
        error       TEXT NOT NULL DEFAULT '',
        assigned_at TEXT NOT NULL,
        started_at  TEXT,
        finished_at TEXT,
        PRIMARY KEY (run_id, step, attempt),
        FOREIGN KEY (run_id, step) REFERENCES steps(run_id, name)
    );

    CREATE TABLE nodes (
        id             TEXT PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        status         TEXT NOT NULL,
        isolation      TEXT NOT NULL,
        labels         TEXT NOT NULL,
        cpu_millis     INTEGER NOT NULL,
        memory_bytes   INTEGER NOT NULL,
        slots          INTEGER NOT NULL,
        version        TEXT NOT NULL,
        registered_at  TEXT NOT NULL,
        last_heartbeat TEXT
    );

    CREATE TABLE modules (
        digest     TEXT PRIMARY KEY,
        size       INTEGER NOT NULL,
        name       TEXT NOT NULL,
        created_at TEXT NOT NULL
    );

    CREATE TABLE events (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        type      TEXT NOT NULL,
        run_id    TEXT NOT NULL DEFAULT '',
        step      TEXT NOT NULL DEFAULT '',
        attempt   INTEGER NOT NULL DEFAULT 0,
        node      TEXT NOT NULL DEFAULT '',
        data_json TEXT NOT NULL DEFAULT '{}',
        time      TEXT NOT NULL
    );
    CREATE INDEX events_run ON events(run_id, seq);
    """,
    # 2: draining nodes (DrainNode); survives re-registration and restarts.
    """
    ALTER TABLE nodes ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE nodes ADD COLUMN drain_deadline TEXT;
    """,
    # 3: the LLM replay journal of each step, as nodes' routers recorded it.
    """
    CREATE TABLE llm_journal (
        run_id     TEXT NOT NULL,
        step       TEXT NOT NULL,
        attempt    INTEGER NOT NULL,
        call_index INTEGER NOT NULL,
        entry_json TEXT NOT NULL,
        PRIMARY KEY (run_id, step, attempt, call_index)
    );
    """,
    # 4: LLM budgets: what runs and steps spent, and what running attempts were granted.
    """
    ALTER TABLE runs ADD COLUMN reserved_usd REAL NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN reserved_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN thresholds_met INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN llm_calls INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN llm_input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN llm_output_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN llm_cost_usd REAL NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN llm_cache_hits INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN llm_replays INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN llm_upstream_calls INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN grant_usd REAL;
    ALTER TABLE steps ADD COLUMN grant_tokens INTEGER;
    ALTER TABLE steps ADD COLUMN llm_calls INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN llm_input_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN llm_output_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN llm_cost_usd REAL NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN llm_cache_hits INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN llm_replays INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE steps ADD COLUMN llm_upstream_calls INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: per-run counters of open and unsucceeded steps, kept by triggers on every status change,
    # so that settling a run after one step's result never reads all its steps.
    """
    ALTER TABLE runs ADD COLUMN open_steps INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN unsucceeded_steps INTEGER NOT NULL DEFAULT 0;
    UPDATE runs SET
        open_steps = (SELECT COUNT(*) FROM steps s WHERE s.run_id = runs.id
                      AND s.status NOT IN ('succeeded', 'failed', 'cancelled', 'skipped')),
        unsucceeded_steps = (SELECT COUNT(*) FROM steps s WHERE s.run_id = runs.id
                             AND s.status IN ('failed', 'cancelled', 'skipped'));
    CREATE TRIGGER steps_counted AFTER INSERT ON steps BEGIN
        UPDATE runs SET
            open_steps = open_steps + (NEW.status NOT IN ('succeeded', 'failed', 'cancelled', 'skipped')),
            unsucceeded_steps = unsucceeded_steps + (NEW.status IN ('failed', 'cancelled', 'skipped'))
        WHERE id = NEW.run_id;
    END;
    CREATE TRIGGER steps_recounted AFTER UPDATE OF status ON steps WHEN OLD.status != NEW.status BEGIN
        UPDATE runs SET
            open_steps = open_steps
                + (NEW.status NOT IN ('succeeded', 'failed', 'cancelled', 'skipped'))
                - (OLD.status NOT IN ('succeeded', 'failed', 'cancelled', 'skipped')),
            unsucceeded_steps = unsucceeded_steps
                + (NEW.status IN ('failed', 'cancelled', 'skipped'))
                - (OLD.status IN ('failed', 'cancelled', 'skipped'))
        WHERE id = NEW.run_id;
    END;
    CREATE INDEX steps_run_status ON steps(run_id, status);
    """,
    # 6: the sandbox layers a node's workers run behind (comma-separated SandboxLayer values).
    """
    ALTER TABLE nodes ADD COLUMN sandbox_layers TEXT NOT NULL DEFAULT '';
    """,
    # 7: what a step's last finished attempt used (agentflow.usage.ResourceUsage as JSON; '' none yet).
    """
    ALTER TABLE steps ADD COLUMN usage TEXT NOT NULL DEFAULT '';
    """,
    # 8: bearer tokens (controlplane.tokens), stored as the SHA-256 of the token.
    """
    CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        role        TEXT NOT NULL,
        digest      TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL,
        expires_at  TEXT,
        single_use  INTEGER NOT NULL DEFAULT 0,
        used_at     TEXT,
        revoked_at  TEXT
    );
    """,
    # 9: the store's identity (events are named "<store_id>-<seq>" outside it) and how far each
    # event sink (e.g. NATS JetStream) has delivered the events table, which is its outbox.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(8))));
    CREATE TABLE event_deliveries (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    CREATE INDEX events_time ON events(time);
    CREATE INDEX events_type ON events(type, seq);
    """,
    # 10: each run's trace: its id, the span id of its current workflow.execute (a retry begins
    # a new one), the span it was submitted under, and when the current execution began.
    """
    ALTER TABLE runs ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN span_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN parent_span_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN span_started_at TEXT;
    """,
    # 11: the ready queue in its order without a sort: each step carries its run's sequence
    # number, so a scheduling pass reads the first ready steps of an index and stops, and the
    # earliest end of a backoff is one index lookup (neither grows with the number waiting).
    """
    ALTER TABLE steps ADD COLUMN run_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE steps SET run_seq = (SELECT seq FROM runs WHERE runs.id = steps.run_id);
    CREATE INDEX steps_queue ON steps(status, run_seq, idx);
    CREATE INDEX steps_backoff ON steps(status, not_before);
    """,
    # 12: a token that changes with every change of a node that placement reads (a heartbeat
    # does not change it): a scheduling pass reads it and decodes the nodes again only when it
    # changed. Random, not a counter, so that a rolled-back change cannot leave a number behind
    # that a later, different change would take again.
    """
    INSERT INTO meta (key, value) VALUES ('nodes_token', lower(hex(randomblob(8))));
    CREATE TRIGGER nodes_token_insert AFTER INSERT ON nodes BEGIN
        UPDATE meta SET value = lower(hex(randomblob(8))) WHERE key = 'nodes_token';
    END;
    CREATE TRIGGER nodes_token_delete AFTER DELETE ON nodes BEGIN
        UPDATE meta SET value = lower(hex(randomblob(8))) WHERE key = 'nodes_token';
    END;
    CREATE TRIGGER nodes_token_update AFTER UPDATE OF id, name, status, isolation, sandbox_layers, labels,
        cpu_millis, memory_bytes, slots, version, registered_at, draining, drain_deadline ON nodes BEGIN
        UPDATE meta SET value = lower(hex(randomblob(8))) WHERE key = 'nodes_token';
    END;
    """,
)
