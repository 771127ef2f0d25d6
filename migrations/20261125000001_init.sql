-- ostree-gateway store: identities, repositories, policy rules and the audit trail.
-- Timestamps are RFC 3339 UTC text (sortable, readable in the sqlite3 shell).

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    disabled    INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    is_admin    INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at  TEXT NOT NULL
);

CREATE TABLE ssh_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    algorithm    TEXT NOT NULL,
    key_blob     TEXT NOT NULL,            -- base64 wire encoding, as in authorized_keys
    fingerprint  TEXT NOT NULL UNIQUE,     -- "SHA256:..." as printed by ssh-keygen -l
    comment      TEXT,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX ssh_keys_user ON ssh_keys(user_id);

CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE team_members (
    team_id     INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    is_admin    INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    added_at    TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

CREATE TABLE repos (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    path           TEXT NOT NULL UNIQUE,   -- absolute, canonical, inside the repos root
    mode           TEXT NOT NULL CHECK (mode IN ('archive', 'bare', 'bare-user')),
    collection_id  TEXT,
    created_at     TEXT NOT NULL
);

-- Ordered first-match rules. `position` is unique so the order is total.
CREATE TABLE rules (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,  -- ids are never reused: audit rows cite them
    position           INTEGER NOT NULL UNIQUE,
    subject_kind       TEXT NOT NULL CHECK (subject_kind IN ('user', 'team', 'everyone')),
    subject_name       TEXT,               -- user or team name; NULL for everyone
    repo_pattern       TEXT NOT NULL,
    ref_pattern        TEXT NOT NULL,
    ops                TEXT NOT NULL,      -- canonical comma list: create,update,force,delete
    effect             TEXT NOT NULL CHECK (effect IN ('allow', 'deny')),
    require_signature  INTEGER NOT NULL DEFAULT 0 CHECK (require_signature IN (0, 1)),
    timestamp_check    INTEGER NOT NULL DEFAULT 1 CHECK (timestamp_check IN (0, 1)),
    comment            TEXT,
    created_at         TEXT NOT NULL,
    CHECK ((subject_kind = 'everyone') = (subject_name IS NULL))
);

CREATE TABLE gpg_keys (
    id           INTEGER PRIMARY KEY,
    repo_id      INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    fingerprint  TEXT NOT NULL,            -- primary key fingerprint, 40 upper-case hex
    user_ids     TEXT,                     -- "Name <mail>" lines, informational
    armored      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (repo_id, fingerprint)
);

-- Append-only: rows are inserted, then their `state` is settled once; never deleted.
-- Names are copied (not foreign keys) so the trail survives user and repo removal.
CREATE TABLE audit (
    id               INTEGER PRIMARY KEY,
    time             TEXT NOT NULL,
    push_id          TEXT,                 -- groups the rows of one push
    user_name        TEXT,
    key_fingerprint  TEXT,
    peer_addr        TEXT,
    repo             TEXT,
    ref_name         TEXT,
    old_rev          TEXT,
    new_rev          TEXT,
    op               TEXT,                 -- create, update, force, delete, or an admin action
    decision         TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
    matched_rule     INTEGER,
    reason           TEXT,
    state            TEXT NOT NULL CHECK (state IN ('in_progress', 'accepted', 'rejected', 'failed')),
    finished_at      TEXT
);
CREATE INDEX audit_time ON audit(time);
CREATE INDEX audit_repo ON audit(repo, time);
CREATE INDEX audit_user ON audit(user_name, time);
CREATE INDEX audit_in_progress ON audit(state) WHERE state = 'in_progress';

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit rows are append-only');
END;

CREATE TRIGGER audit_settle_once BEFORE UPDATE ON audit
WHEN OLD.state <> 'in_progress'
BEGIN
    SELECT RAISE(ABORT, 'settled audit rows are immutable');
END;
