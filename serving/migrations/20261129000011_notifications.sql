-- Notifications to users: the in-app inbox, each user's channel preferences, and the
-- outbound messages (e-mail, SMS) waiting to be sent, with their attempts.

-- One inbox entry per thing a user should know (an alert given to them, or moved from
-- them); made from the alert event log, at most once per (user, event).
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    event_id    BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    alert_id    TEXT,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    read_at     BIGINT,
    UNIQUE (user_id, event_id)
);
CREATE INDEX notifications_inbox ON notifications (org_id, user_id, id);
CREATE INDEX notifications_unread ON notifications (org_id, user_id, read_at);

-- A user's channels. email is immediate, digest or off; sms is 1 or 0 (to phone, in
-- E.164); quiet hours are minutes after local midnight in timezone (an IANA name), and
-- hold e-mail and SMS until they end. A digest goes out at digest_hour local time
-- (next_digest_at, Unix seconds) with what arrived since last_digest_at.
CREATE TABLE notification_preferences (
    user_id         TEXT PRIMARY KEY REFERENCES users (id),
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    email           TEXT NOT NULL,
    sms             BIGINT NOT NULL,
    phone           TEXT,
    quiet_start     BIGINT,
    quiet_end       BIGINT,
    timezone        TEXT NOT NULL,
    digest_hour     BIGINT NOT NULL,
    next_digest_at  BIGINT,
    last_digest_at  BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX notification_preferences_digest ON notification_preferences (email, next_digest_at);

-- A message on its way: channel email or sms; status pending (due at next_attempt_ms,
-- Unix milliseconds), sent, or dead. dedupe_key makes each message once (per
-- notification and channel, or per user and digest day).
CREATE TABLE outbound_messages (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations (id),
    user_id          TEXT NOT NULL REFERENCES users (id),
    channel          TEXT NOT NULL,
    dedupe_key       TEXT NOT NULL UNIQUE,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body_text        TEXT NOT NULL,
    body_html        TEXT,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_ms  BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX outbound_messages_due ON outbound_messages (status, next_attempt_ms);
CREATE INDEX outbound_messages_user ON outbound_messages (org_id, user_id, id);

INSERT INTO event_cursors (name, value) SELECT 'notifications', value FROM event_counter WHERE id = 1;
