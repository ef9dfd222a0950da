/**
 * The embedded store's schema, one migration per change, applied in order by `@effect/sql`'s migrator (its table
 * `effect_sql_migrations` records which have run). A data directory written by an older version opens in a newer
 * one: a new version adds migrations here and never edits one that has shipped.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/** `PRAGMA application_id` of our database files ("ECHT"): a file with another id is not ours to touch. */
export const APPLICATION_ID = 0x45434854

const messages = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`PRAGMA application_id = ${APPLICATION_ID}`)
  // A room's last id, kept when retention has removed every message, so ids never start again.
  yield* sql`CREATE TABLE rooms (name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID`
  // Clustered by (room, id): history pages and resume catch-ups are range reads of one room.
  yield* sql`CREATE TABLE messages (
    room TEXT NOT NULL,
    id INTEGER NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (room, id)
  ) WITHOUT ROWID`
  // Retention by age.
  yield* sql`CREATE INDEX messages_at ON messages (at)`
  // Small facts about the store itself (the writer's health probe writes here).
  yield* sql`CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID`
})

const sessions = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // Tokens are kept as their SHA-256 only: a copy of the file does not let anyone resume a session.
  yield* sql`CREATE TABLE sessions (
    session TEXT PRIMARY KEY,
    token_hash BLOB UNIQUE,
    name TEXT NOT NULL,
    rooms TEXT NOT NULL,
    node TEXT NOT NULL,
    held_until INTEGER
  ) WITHOUT ROWID`
  yield* sql`CREATE INDEX sessions_held ON sessions (held_until) WHERE held_until IS NOT NULL`
})

const roomSeqTrigger = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // A room's last id follows its messages inside SQLite: a group's messages are then one INSERT, atomic alone,
  // with no transaction around it (each statement through @effect/sql costs far more than SQLite's work).
  yield* sql`CREATE TRIGGER messages_room_seq AFTER INSERT ON messages BEGIN
    INSERT INTO rooms (name, seq) VALUES (NEW.room, NEW.id)
      ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq);
  END`
})

const chatFeatures = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // Who may edit or delete a message (a user key or a guest's session), what it answers, and its current state:
  // a deleted message keeps its place and loses its text; reactions are JSON `{emoji: [{key, name}]}`.
  yield* sql`ALTER TABLE messages ADD COLUMN author TEXT`
  yield* sql`ALTER TABLE messages ADD COLUMN reply_to INTEGER`
  yield* sql`ALTER TABLE messages ADD COLUMN edited INTEGER`
  yield* sql`ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0`
  yield* sql`ALTER TABLE messages ADD COLUMN reactions TEXT`
  // A room's changes are numbered as its messages are, so a resume can ask for those after the last it was sent.
  yield* sql`ALTER TABLE rooms ADD COLUMN rev INTEGER NOT NULL DEFAULT 0`
  yield* sql`CREATE TABLE changes (
    room TEXT NOT NULL,
    rev INTEGER NOT NULL,
    id INTEGER NOT NULL,
    frame TEXT NOT NULL,
    PRIMARY KEY (room, rev)
  ) WITHOUT ROWID`
  yield* sql`CREATE INDEX changes_message ON changes (room, id)`
  // A message retention removes takes its changes along.
  yield* sql`CREATE TRIGGER messages_changes_gone AFTER DELETE ON messages BEGIN
    DELETE FROM changes WHERE room = OLD.room AND id = OLD.id;
  END`
  // Read markers belong to the user (a user key, or a guest's session).
  yield* sql`CREATE TABLE read_markers (
    user TEXT NOT NULL,
    room TEXT NOT NULL,
    last_read INTEGER NOT NULL,
    PRIMARY KEY (user, room)
  ) WITHOUT ROWID`
})

/** Every migration, by `<id>_<name>`: the loader's input. */
export const all: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0001_messages": messages,
  "0002_sessions": sessions,
  "0003_room_seq_trigger": roomSeqTrigger,
  "0004_chat_features": chatFeatures
}

/** The migrations up to and including `id`: what an older version of the server had (for upgrade tests). */
export const upTo = (id: number): Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> =>
  Object.fromEntries(Object.entries(all).filter(([key]) => Number(key.slice(0, 4)) <= id))
