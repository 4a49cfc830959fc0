-- mailstack's mail store, version 1. Every object lives in the schema
-- mailstack, which the runtime creates and puts first on its search_path.

CREATE TABLE users (
	-- id is an integer so that it can key an advisory lock (the POP3
	-- maildrop lock) together with a namespace.
	id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- address is canonical: local part as given, domain in lower case.
	address       text   NOT NULL UNIQUE,
	-- password_hash is an argon2id PHC string; never the password.
	password_hash text   NOT NULL,
	quota_bytes   bigint NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0),
	-- used_bytes is the sum of the sizes of the user's messages, kept in
	-- the transactions that add and remove them.
	used_bytes    bigint NOT NULL DEFAULT 0
);

-- A mailbox's id is its IMAP UIDVALIDITY: drawn from one sequence, so no
-- two mailboxes ever share one and a mailbox deleted and created again
-- gets a new one (RFC 9051 2.3.1.1). It starts at the clock (see the end
-- of this file), so a store rebuilt from nothing does not reuse the values
-- of the one it replaces.
CREATE SEQUENCE uidvalidity AS bigint MINVALUE 1 MAXVALUE 4294967295;

CREATE TABLE mailboxes (
	id             bigint  PRIMARY KEY DEFAULT nextval('uidvalidity'),
	user_id        integer NOT NULL REFERENCES users ON DELETE CASCADE,
	name           text    NOT NULL,
	-- Every change to the mailbox's messages locks this row first
	-- (UPDATE ... uid_next/modseq), which orders them: UIDs ascend in
	-- commit order and MODSEQs never go back.
	uid_next       bigint  NOT NULL DEFAULT 1,
	modseq         bigint  NOT NULL DEFAULT 1,
	-- recent_from is the lowest UID no session has claimed as \Recent.
	recent_from    bigint  NOT NULL DEFAULT 1,
	special_use    text    NOT NULL DEFAULT '',
	-- vanished_count counts the mailbox's rows in vanished; vanished_floor
	-- is the highest MODSEQ of an expunge whose row was pruned.
	vanished_count integer NOT NULL DEFAULT 0,
	vanished_floor bigint  NOT NULL DEFAULT 0,
	UNIQUE (user_id, name)
);
ALTER SEQUENCE uidvalidity OWNED BY mailboxes.id;

CREATE TABLE subscriptions (
	user_id integer NOT NULL REFERENCES users ON DELETE CASCADE,
	name    text    NOT NULL,
	PRIMARY KEY (user_id, name)
);

-- A message body, written once and shared by the copies of a message.
-- data holds the first chunk (all of a small message); the rest of a large
-- one is in blob_chunks, so that it is written and read a chunk at a time.
-- refs counts the messages that use it (triggers below keep it); a blob
-- left at 0 by a writer that died is removed by the store's sweep.
CREATE TABLE blobs (
	id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	size    bigint      NOT NULL,
	refs    integer     NOT NULL DEFAULT 0,
	created timestamptz NOT NULL DEFAULT now(),
	data    bytea       NOT NULL
);
CREATE INDEX blobs_unreferenced ON blobs (created) WHERE refs = 0;

CREATE TABLE blob_chunks (
	blob_id bigint  NOT NULL REFERENCES blobs ON DELETE CASCADE,
	seq     integer NOT NULL,
	data    bytea   NOT NULL,
	PRIMARY KEY (blob_id, seq)
);

CREATE TABLE messages (
	mailbox_id    bigint      NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
	uid           bigint      NOT NULL,
	-- modseq is the mailbox's MODSEQ when the message arrived or its
	-- flags last changed.
	modseq        bigint      NOT NULL,
	-- flags as IMAP names, normalized (store.NormalizeFlags): system
	-- flags first, then keywords sorted.
	flags         text[]      NOT NULL DEFAULT '{}',
	size          bigint      NOT NULL,
	internal_date timestamptz NOT NULL,
	blob_id       bigint      NOT NULL REFERENCES blobs,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_blob ON messages (blob_id);

-- UIDs expunged (or moved away), with the MODSEQ of their removal, for
-- QRESYNC's VANISHED (RFC 7162 3.2.10).
CREATE TABLE vanished (
	mailbox_id bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
	uid        bigint NOT NULL,
	modseq     bigint NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
);

-- Blob reference counts follow the messages rows, whichever statement or
-- cascade adds or removes them; a blob no message uses any more goes with
-- its chunks.
CREATE FUNCTION messages_added() RETURNS trigger
LANGUAGE plpgsql SET search_path = mailstack, pg_temp AS $$
BEGIN
	UPDATE blobs b SET refs = b.refs + a.n
	FROM (SELECT blob_id, count(*) AS n FROM added GROUP BY blob_id) a
	WHERE b.id = a.blob_id;
	RETURN NULL;
END $$;

CREATE FUNCTION messages_removed() RETURNS trigger
LANGUAGE plpgsql SET search_path = mailstack, pg_temp AS $$
DECLARE
	emptied bigint[];
BEGIN
	WITH dec AS (
		UPDATE blobs b SET refs = b.refs - r.n
		FROM (SELECT blob_id, count(*) AS n FROM removed GROUP BY blob_id) r
		WHERE b.id = r.blob_id
		RETURNING b.id, b.refs
	)
	SELECT array_agg(id) INTO emptied FROM dec WHERE refs <= 0;
	IF emptied IS NOT NULL THEN
		DELETE FROM blobs WHERE id = ANY (emptied);
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER messages_added AFTER INSERT ON messages
	REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION messages_added();
CREATE TRIGGER messages_removed AFTER DELETE ON messages
	REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION messages_removed();

-- notify_changes tells every runtime on the database which mailboxes
-- changed: each element of changed is "<uidvalidity> <address>", origin
-- names the store that made the change. Payloads are kept under
-- PostgreSQL's 8000-byte limit. The runtime calls it right after the
-- transactions that made the changes commit, in a transaction of its own
-- that does not wait for the disk: NOTIFY serializes the commits of every
-- transaction that sends one, through their WAL flush, which would undo
-- the group commit of concurrent deliveries.
CREATE FUNCTION notify_changes(origin text, changed text[]) RETURNS void
LANGUAGE plpgsql SET search_path = mailstack, pg_temp AS $$
DECLARE
	payload text := origin;
	item text;
BEGIN
	FOREACH item IN ARRAY coalesce(changed, '{}') LOOP
		IF octet_length(payload) + octet_length(item) > 7000 THEN
			PERFORM pg_notify('mailstack', payload);
			payload := origin;
		END IF;
		payload := payload || E'\n' || item;
	END LOOP;
	IF payload <> origin THEN
		PERFORM pg_notify('mailstack', payload);
	END IF;
END $$;

-- deliver stores one body in the INBOX of every user of addrs, all or
-- nothing, in one statement (one round trip): status 0 and no address on
-- success; 1 and the first unknown address; 2 and the first address over
-- quota (nothing is written then). The users' rows are locked in id order
-- while their usage is checked and raised, so concurrent deliveries cannot
-- both squeeze under a quota and never deadlock. It returns each changed
-- mailbox as "<uidvalidity> <address>" in changed, for the caller's
-- notification.
CREATE FUNCTION deliver(addrs text[], body bytea, blob bigint, body_size bigint, at timestamptz,
	OUT status integer, OUT address text, OUT changed text[])
LANGUAGE plpgsql SET search_path = mailstack, pg_temp AS $$
DECLARE
	u record;
	found_n integer := 0;
	ids integer[] := '{}';
BEGIN
	status := 0;
	FOR u IN SELECT id, users.address AS addr, quota_bytes, used_bytes FROM users
		WHERE users.address = ANY (addrs) ORDER BY id FOR UPDATE
	LOOP
		found_n := found_n + 1;
		ids := ids || u.id;
		IF status = 0 AND u.quota_bytes > 0 AND u.used_bytes + body_size > u.quota_bytes THEN
			status := 2;
			address := u.addr;
		END IF;
	END LOOP;
	IF found_n < cardinality(addrs) THEN
		status := 1;
		SELECT a INTO address FROM unnest(addrs) a
			WHERE NOT EXISTS (SELECT 1 FROM users WHERE users.address = a) LIMIT 1;
		RETURN;
	END IF;
	IF status <> 0 THEN
		RETURN;
	END IF;
	IF blob IS NULL THEN
		INSERT INTO blobs (size, data) VALUES (body_size, body) RETURNING id INTO blob;
	END IF;
	WITH boxes AS (
		UPDATE mailboxes SET uid_next = uid_next + 1, modseq = modseq + 1
		WHERE user_id = ANY (ids) AND name = 'INBOX'
		RETURNING id, user_id, uid_next - 1 AS uid, modseq
	), added AS (
		INSERT INTO messages (mailbox_id, uid, modseq, size, internal_date, blob_id)
		SELECT id, uid, modseq, body_size, at, blob FROM boxes
		RETURNING mailbox_id
	)
	SELECT array_agg(b.id || ' ' || users.address) INTO changed
	FROM boxes b JOIN users ON users.id = b.user_id;
	UPDATE users SET used_bytes = used_bytes + body_size WHERE id = ANY (ids);
END $$;

-- append stores a body as a new message of one mailbox (IMAP APPEND):
-- status 0 with the mailbox's UIDVALIDITY and the new UID; 1 for an
-- unknown user, 3 for an unknown mailbox, 2 over quota.
CREATE FUNCTION append(addr text, mailbox text, body bytea, blob bigint, body_size bigint,
	msg_flags text[], at timestamptz, OUT status integer, OUT uidvalidity bigint, OUT uid bigint)
LANGUAGE plpgsql SET search_path = mailstack, pg_temp AS $$
DECLARE
	u record;
	box_modseq bigint;
BEGIN
	SELECT id, quota_bytes, used_bytes INTO u FROM users WHERE address = addr FOR UPDATE;
	IF NOT FOUND THEN
		status := 1;
		RETURN;
	END IF;
	IF u.quota_bytes > 0 AND u.used_bytes + body_size > u.quota_bytes THEN
		status := 2;
		RETURN;
	END IF;
	UPDATE mailboxes SET uid_next = uid_next + 1, modseq = modseq + 1
	WHERE user_id = u.id AND name = mailbox
	RETURNING id, uid_next - 1, modseq INTO uidvalidity, uid, box_modseq;
	IF NOT FOUND THEN
		status := 3;
		RETURN;
	END IF;
	IF blob IS NULL THEN
		INSERT INTO blobs (size, data) VALUES (body_size, body) RETURNING id INTO blob;
	END IF;
	INSERT INTO messages (mailbox_id, uid, modseq, flags, size, internal_date, blob_id)
	VALUES (uidvalidity, uid, box_modseq, msg_flags, body_size, at, blob);
	UPDATE users SET used_bytes = used_bytes + body_size WHERE id = u.id;
	status := 0;
END $$;

SELECT setval('uidvalidity', greatest(1, extract(epoch FROM now())::bigint));
