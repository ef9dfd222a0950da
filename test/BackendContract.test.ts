/**
 * One contract for every backend: what the chat core relies on from `Hub`, `Sessions`, `Names` and `Presence`,
 * written once and run against each implementation (memory, the embedded store, Redis). Each backend is built once per suite and shared by its tests, so every test works in rooms, names and
 * sessions of its own and measures shared counters (`users`, `roomCount`) as differences.
 *
 * Where the implementations legitimately differ, only the shared part is pinned, and a comment says what differs.
 * Not pinned yet, because the backends disagree and the core does not (today) depend on either answer:
 * - a guest key joining a room it is already in: memory says false and keeps the first name, Redis says true and
 *   lists the new name.
 * - `Sessions.update` naming another `node`: memory replaces the record, Redis ignores the update.
 * - a record whose `node` never beat: Redis does not redeem its token, memory does.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option } from "effect"
import { Hub, type RoomEvent } from "../src/backend/Hub.js"
import { Names, type NameOwner } from "../src/backend/Names.js"
import { NodeId } from "../src/backend/NodeId.js"
import { Presence } from "../src/backend/Presence.js"
import { newSessionId, type SessionRecord, Sessions } from "../src/backend/Sessions.js"
import { userKey } from "../src/backend/UserKey.js"
import * as RedisBackend from "../src/redis/RedisBackend.js"
import * as SqliteBackend from "../src/sqlite/SqliteBackend.js"
import * as TempDir from "./support/TempDir.js"
import * as RedisServer from "./support/RedisServer.js"

type Backend = Hub | Sessions | Names | Presence | NodeId

/** Messages a room retains, the same for every backend under test. */
const RETAIN = 10

/** Names, rooms and keys unique to this run, so tests never meet each other's state in a shared backend. */
let counter = 0
const unique = (base: string) => `${base}${Date.now().toString(36)}${counter++}`

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const ids = (messages: ReadonlyArray<{ readonly id: number }>) => messages.map((m) => m.id)

/** Polls until `condition` holds: a Redis subscriber hears of a publish a moment after `publish` returns. */
const eventually = (condition: () => boolean, what: string, timeoutMs = 5_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting until ${what}`))
      yield* Effect.sleep(Duration.millis(10))
    }
  })

/** A subscription whose events are collected, for the test to look at. */
const listen = (room: string) =>
  Effect.gen(function* () {
    const hub = yield* Hub
    const events: Array<RoomEvent> = []
    const feed = yield* hub.subscribe(room, (event) => events.push(event))
    const messageIds = () => events.flatMap((e) => (e._tag === "Message" ? [e.frame.id] : []))
    return { feed, events, messageIds }
  })

const publishMany = (room: string, count: number) =>
  Effect.flatMap(Hub, (hub) =>
    Effect.forEach(range(1, count), (i) => hub.publish(room, { from: "alice", text: `m${i}` }))
  )

/** The fields a session record carries, whatever else a backend keeps beside them. */
const recordOf = (record: SessionRecord): SessionRecord => ({
  session: record.session,
  name: record.name,
  rooms: record.rooms,
  node: record.node,
  heldUntil: record.heldUntil
})

const ownerOf = (owner: NameOwner): NameOwner => ({ name: owner.name, session: owner.session, node: owner.node })

const contract = <E>(name: string, backend: Layer.Layer<Backend, E>) =>
  describe(name, () => {
    layer(backend, { excludeTestServices: true })((it) => {
      describe("Hub", () => {
        it.scoped(
          "ids start at 1 and rise by exactly 1 under concurrent publishes; a subscriber sees them in order",
          () =>
            Effect.gen(function* () {
              const hub = yield* Hub
              const room = unique("room")
              const { feed, messageIds } = yield* listen(room)
              assert.strictEqual(feed.lastId, 0)

              const published = yield* Effect.all(
                range(1, 50).map((i) => hub.publish(room, { from: "alice", text: `m${i}` })),
                { concurrency: "unbounded" }
              )
              assert.deepStrictEqual(
                ids(published).sort((a, b) => a - b),
                range(1, 50)
              )
              yield* eventually(() => messageIds().length >= 50, "the subscriber has 50 messages")
              assert.deepStrictEqual(messageIds(), range(1, 50))
              assert.strictEqual((yield* hub.bounds(room)).latest, 50)
            })
        )

        it.effect("a published message carries its room, sender, text and time", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            const before = Date.now()
            const message = yield* hub.publish(room, { from: "alice", text: "hello" })
            assert.deepStrictEqual(
              { ...message, at: 0 },
              {
                type: "message",
                room,
                id: 1,
                from: "alice",
                text: "hello",
                at: 0
              }
            )
            assert.isTrue(message.at >= before && message.at <= Date.now())
            const page = yield* hub.history(room, { limit: 10 })
            assert.deepStrictEqual(page, { messages: [message], more: false })
          })
        )

        it.effect("rooms are independent: ids, history and bounds", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const [a, b, empty] = [unique("a"), unique("b"), unique("empty")]
            yield* hub.publish(a, { from: "alice", text: "a1" })
            yield* hub.publish(a, { from: "alice", text: "a2" })
            const inB = yield* hub.publish(b, { from: "bob", text: "b1" })
            assert.strictEqual(inB.id, 1)

            assert.deepStrictEqual(
              (yield* hub.history(b, { limit: 10 })).messages.map((m) => m.text),
              ["b1"]
            )
            assert.deepStrictEqual(
              (yield* hub.history(a, { limit: 10 })).messages.map((m) => m.text),
              ["a1", "a2"]
            )
            assert.deepStrictEqual(yield* hub.bounds(a), { oldest: 1, latest: 2 })
            assert.deepStrictEqual(yield* hub.bounds(b), { oldest: 1, latest: 1 })
            assert.deepStrictEqual(yield* hub.bounds(empty), { oldest: 0, latest: 0 })
            assert.deepStrictEqual(yield* hub.history(empty, { limit: 10 }), { messages: [], more: false })
          })
        )

        it.effect("history pages backwards, newest last, with before/limit and more", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            yield* publishMany(room, 8)

            const newest = yield* hub.history(room, { limit: 3 })
            assert.deepStrictEqual(ids(newest.messages), [6, 7, 8])
            assert.deepStrictEqual(
              newest.messages.map((m) => m.text),
              ["m6", "m7", "m8"]
            )
            assert.isTrue(newest.more)

            // A limit of 0 (`--join-history 0`) is no messages, on every backend.
            assert.deepStrictEqual((yield* hub.history(room, { limit: 0 })).messages, [])
            const older = yield* hub.history(room, { before: 6, limit: 3 })
            assert.deepStrictEqual(ids(older.messages), [3, 4, 5])
            assert.isTrue(older.more)

            const oldest = yield* hub.history(room, { before: 3, limit: 3 })
            assert.deepStrictEqual(ids(oldest.messages), [1, 2])
            assert.isFalse(oldest.more)

            assert.deepStrictEqual(yield* hub.history(room, { before: 1, limit: 3 }), { messages: [], more: false })
            const all = yield* hub.history(room, { limit: 100 })
            assert.deepStrictEqual(ids(all.messages), range(1, 8))
            assert.isFalse(all.more)
          })
        )

        it.effect("after + oldestFirst reads forward from a resume point", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            yield* publishMany(room, 8)

            const first = yield* hub.history(room, { after: 2, limit: 3, oldestFirst: true })
            assert.deepStrictEqual(ids(first.messages), [3, 4, 5])
            assert.isTrue(first.more)
            const rest = yield* hub.history(room, { after: 5, limit: 10, oldestFirst: true })
            assert.deepStrictEqual(ids(rest.messages), [6, 7, 8])
            assert.deepStrictEqual(yield* hub.history(room, { after: 8, limit: 10, oldestFirst: true }), {
              messages: [],
              more: false
            })
            // Both bounds: the gap between a resume point and where a live feed started.
            const gap = yield* hub.history(room, { after: 2, before: 6, limit: 10, oldestFirst: true })
            assert.deepStrictEqual(ids(gap.messages), [3, 4, 5])
            // Without oldestFirst, `after` only bounds the page: the newest matching messages come.
            const newest = yield* hub.history(room, { after: 2, limit: 3 })
            assert.deepStrictEqual(ids(newest.messages), [6, 7, 8])
          })
        )

        // Memory keeps exactly the newest `historyRetain`; Redis trims its stream with `MAXLEN ~`, whole stream
        // nodes at a time, so it may keep more. Shared: the newest `historyRetain` are always there, nothing below
        // `bounds.oldest` is, and `bounds`, `history` and `more` agree with each other.
        it.effect("retention keeps the newest historyRetain messages and bounds says which", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            const total = 3 * RETAIN
            yield* publishMany(room, total)

            const { latest, oldest } = yield* hub.bounds(room)
            assert.strictEqual(latest, total)
            assert.isTrue(oldest >= 1 && oldest <= total - RETAIN + 1, `oldest ${oldest}`)

            const all = yield* hub.history(room, { limit: 10 * total })
            assert.deepStrictEqual(ids(all.messages), range(oldest, total))
            assert.isFalse(all.more)

            const newest = yield* hub.history(room, { limit: RETAIN })
            assert.deepStrictEqual(ids(newest.messages), range(total - RETAIN + 1, total))
            assert.strictEqual(newest.more, oldest < total - RETAIN + 1)

            const forward = yield* hub.history(room, { after: 0, limit: RETAIN, oldestFirst: true })
            assert.strictEqual(forward.messages[0]?.id, oldest)
            assert.isFalse(forward.more)

            // Ids go on past what was trimmed.
            assert.strictEqual((yield* hub.publish(room, { from: "alice", text: "next" })).id, total + 1)
          })
        )

        it.scoped("a subscription starts after lastId and carries later messages and announcements, in order", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            yield* publishMany(room, 3)
            const { events, feed, messageIds } = yield* listen(room)
            assert.strictEqual(feed.lastId, 3)
            const other = yield* listen(room)

            yield* hub.publish(room, { from: "alice", text: "m4" })
            const joined = { type: "joined", room, name: "bob", at: Date.now() } as const
            yield* hub.announce(room, { _tag: "Joined", frame: joined, session: "s-bob" })
            yield* hub.publish(room, { from: "bob", text: "m5" })

            yield* eventually(() => events.length >= 3 && other.events.length >= 3, "both subscribers have 3 events")
            assert.deepStrictEqual(messageIds(), [4, 5])
            assert.deepStrictEqual(
              events.map((e) => e._tag),
              ["Message", "Joined", "Message"]
            )
            assert.deepStrictEqual(events[1], { _tag: "Joined", frame: joined, session: "s-bob" })
            assert.deepStrictEqual(other.messageIds(), [4, 5])
          })
        )

        it.effect("a closed subscription hears nothing more", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            const { events } = yield* Effect.scoped(
              Effect.gen(function* () {
                const subscription = yield* listen(room)
                yield* hub.publish(room, { from: "alice", text: "m1" })
                yield* eventually(() => subscription.events.length === 1, "the subscriber has m1")
                return subscription
              })
            )
            yield* hub.publish(room, { from: "alice", text: "m2" })
            yield* Effect.sleep(Duration.millis(100))
            assert.strictEqual(events.length, 1)
          })
        )

        // Memory counts the rooms it holds state for on this node, Redis the rooms active cluster-wide; a room with
        // a fresh message counts in both.
        it.effect("roomCount counts a room once it has a message", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            const before = yield* hub.roomCount
            yield* hub.publish(room, { from: "alice", text: "hello" })
            yield* hub.publish(room, { from: "alice", text: "again" })
            assert.strictEqual(yield* hub.roomCount, before + 1)
          })
        )
      })

      describe("Message changes and read markers", () => {
        const refusal = (effect: Effect.Effect<unknown, unknown>) =>
          Effect.map(Effect.flip(effect), (error) => (error as { readonly reason?: string }).reason)

        it.scoped("edit and delete by the author only; history carries the state; ids never change", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            yield* hub.publish(room, { from: "alice", text: "helo", author: "u:alice" })
            yield* hub.publish(room, { from: "bob", text: "hi", author: "u:bob", replyTo: 1 })
            const { events, feed } = yield* listen(room)
            assert.strictEqual(feed.lastRev, 0)

            assert.strictEqual(
              yield* refusal(hub.change(room, { _tag: "Edit", id: 1, text: "x", by: "u:bob" })),
              "forbidden"
            )
            assert.strictEqual(yield* refusal(hub.change(room, { _tag: "Delete", id: 1, by: "u:bob" })), "forbidden")
            assert.strictEqual(
              yield* refusal(hub.change(room, { _tag: "Edit", id: 9, text: "x", by: "u:alice" })),
              "no_such_message"
            )
            const edited = yield* hub.change(room, { _tag: "Edit", id: 1, text: "hello", by: "u:alice" })
            assert.strictEqual(edited?.rev, 1)
            const at = edited?.frame.type === "edited" ? edited.frame.at : -1
            assert.deepStrictEqual(edited?.frame, { type: "edited", room, id: 1, text: "hello", at })
            assert.approximately(at, Date.now(), 5_000)
            const deleted = yield* hub.change(room, { _tag: "Delete", id: 2, by: "u:bob" })
            assert.strictEqual(deleted?.rev, 2)
            // Deleting what is deleted is no change, and it cannot be edited any more.
            assert.strictEqual(yield* hub.change(room, { _tag: "Delete", id: 2, by: "u:bob" }), undefined)
            assert.strictEqual(
              yield* refusal(hub.change(room, { _tag: "Edit", id: 2, text: "back", by: "u:bob" })),
              "no_such_message"
            )
            // A moderator (no key) may delete anyone's message.
            yield* hub.publish(room, { from: "carol", text: "spam", author: "u:carol" })
            assert.strictEqual((yield* hub.change(room, { _tag: "Delete", id: 3, by: undefined }))?.rev, 3)

            const page = yield* hub.history(room, { limit: 10 })
            assert.deepStrictEqual(
              page.messages.map((m) => [m.id, m.text, m.edited !== undefined, m.deleted === true, m.reply_to]),
              [
                [1, "hello", true, false, undefined],
                [2, "", false, true, 1],
                [3, "", false, true, undefined]
              ]
            )
            yield* eventually(() => events.length >= 4, "the subscriber has the three changes and message 3")
            assert.deepStrictEqual(
              events.map((e) => (e._tag === "Change" ? [e.rev, e.frame.type, e.frame.id] : e._tag)),
              [[1, "edited", 1], [2, "deleted", 2], "Message", [3, "deleted", 3]]
            )
            const next = yield* listen(room)
            assert.strictEqual(next.feed.lastRev, 3)
          })
        )

        it.effect("reactions toggle per user and emoji, by name in history, at most 20 emoji", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            yield* hub.publish(room, { from: "alice", text: "ship it", author: "u:alice" })
            const react = (by: string, name: string, emoji: string, on: boolean) =>
              hub.change(room, { _tag: "React", id: 1, emoji, on, by, name })
            assert.deepStrictEqual((yield* react("u:bob", "bob", "👍", true))?.frame, {
              type: "reaction",
              room,
              id: 1,
              emoji: "👍",
              name: "bob",
              on: true
            })
            // The same toggle again changes nothing; it is not a refusal.
            assert.strictEqual(yield* react("u:bob", "bob", "👍", true), undefined)
            yield* react("u:carol", "carol", "👍", true)
            yield* react("u:carol", "carol", "🎉", true)
            yield* react("u:bob", "bob", "👍", false)
            assert.strictEqual(yield* react("u:bob", "bob", "🎉", false), undefined)
            const [message] = (yield* hub.history(room, { limit: 1 })).messages
            assert.deepStrictEqual(message?.reactions, { "👍": ["carol"], "🎉": ["carol"] })
            // Taken back after a rename, the reaction is named as it was listed.
            const back = yield* react("u:carol", "carol-renamed", "🎉", false)
            assert.strictEqual(back?.frame.type === "reaction" ? back.frame.name : undefined, "carol")
            yield* react("u:carol", "carol", "🎉", true)
            for (let i = 0; i < 18; i++) yield* react("u:dave", "dave", `e${i}`, true)
            assert.strictEqual(yield* refusal(react("u:dave", "dave", "one-too-many", true)), "too_many_reactions")
            // An emoji already there is not a new one.
            yield* react("u:dave", "dave", "🎉", true)
            assert.strictEqual(yield* refusal(react("u:erin", "erin", "🚀", true)), "too_many_reactions")
          })
        )

        it.effect("changes lists what happened after a rev to messages up to an id", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            yield* publishMany(room, 3)
            yield* hub.publish(room, { from: "alice", text: "mine", author: "k" })
            yield* hub.publish(room, { from: "alice", text: "mine too", author: "k" })
            yield* hub.change(room, { _tag: "Edit", id: 4, text: "edited 4", by: "k" })
            yield* hub.change(room, { _tag: "React", id: 5, emoji: "👍", on: true, by: "k2", name: "bob" })
            yield* hub.change(room, { _tag: "Delete", id: 4, by: "k" })
            // Message 4's edit went with its deletion (see the next test).
            const all = yield* hub.changes(room, { afterRev: 0, throughRev: 3, throughId: 5 })
            assert.deepStrictEqual(
              all.map((c) => [c.rev, c.frame.type, c.frame.id]),
              [
                [2, "reaction", 5],
                [3, "deleted", 4]
              ]
            )
            const later = yield* hub.changes(room, { afterRev: 1, throughRev: 2, throughId: 4 })
            assert.deepStrictEqual(later, [])
            const upTo4 = yield* hub.changes(room, { afterRev: 1, throughRev: 3, throughId: 4 })
            assert.deepStrictEqual(
              upTo4.map((c) => c.rev),
              [3]
            )
          })
        )

        it.effect("a deleted message's earlier edits never come back from the log: only its deletion", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            yield* hub.publish(room, { from: "alice", text: "draft", author: "k" })
            yield* hub.publish(room, { from: "alice", text: "kept", author: "k" })
            yield* hub.change(room, { _tag: "Edit", id: 1, text: "SECRET", by: "k" })
            yield* hub.change(room, { _tag: "React", id: 1, emoji: "👍", on: true, by: "k2", name: "bob" })
            yield* hub.change(room, { _tag: "Edit", id: 2, text: "kept, edited", by: "k" })
            yield* hub.change(room, { _tag: "Delete", id: 1, by: "k" })
            const logged = yield* hub.changes(room, { afterRev: 0, throughRev: 10, throughId: 2 })
            assert.deepStrictEqual(
              logged.map((c) => [c.frame.type, c.frame.id]),
              [
                ["edited", 2],
                ["deleted", 1]
              ]
            )
            assert.notInclude(JSON.stringify(logged), "SECRET")
          })
        )

        it.effect("read markers move forward only, never past the latest id; unread skips deleted messages", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            const user = unique("u:reader")
            assert.deepStrictEqual(yield* hub.unread(room, user), { type: "unread", room, last_read: 0, count: 0 })
            yield* publishMany(room, 3)
            yield* hub.publish(room, { from: "alice", text: "oops", author: "k" })
            yield* hub.publish(room, { from: "alice", text: "m5", author: "k" })
            assert.deepStrictEqual(yield* hub.unread(room, user), { type: "unread", room, last_read: 0, count: 5 })
            yield* hub.change(room, { _tag: "Delete", id: 4, by: "k" })
            assert.strictEqual((yield* hub.unread(room, user)).count, 4)
            const moved = yield* hub.markRead(room, user, 2)
            assert.deepStrictEqual(moved, {
              unread: { type: "unread", room, last_read: 2, count: 2 },
              moved: true,
              through: 5
            })
            // Counted only up to an id when asked (what a joiner was sent).
            assert.strictEqual((yield* hub.unread(room, user, 4)).count, 1)
            const back = yield* hub.markRead(room, user, 1)
            assert.deepStrictEqual(back, {
              unread: { type: "unread", room, last_read: 2, count: 2 },
              moved: false,
              through: 5
            })
            const past = yield* hub.markRead(room, user, 99)
            assert.deepStrictEqual(past.unread, { type: "unread", room, last_read: 5, count: 0 })
            // Markers are per user and per room.
            assert.strictEqual((yield* hub.unread(room, unique("u:other"))).last_read, 0)
            assert.strictEqual((yield* hub.unread(unique("room"), user)).last_read, 0)
          })
        )

        it.effect("the unread count stops at 1,000", () =>
          Effect.gen(function* () {
            const hub = yield* Hub
            const room = unique("room")
            yield* Effect.forEach(range(1, 1005), (i) => hub.publish(room, { from: "alice", text: `m${i}` }), {
              concurrency: 50
            })
            // A backend retaining fewer than 1,000 messages counts what it retains (retention may run meanwhile).
            const span = ({ latest, oldest }: { latest: number; oldest: number }) => Math.min(1000, latest - oldest + 1)
            const before = span(yield* hub.bounds(room))
            const count = (yield* hub.unread(room, unique("u:reader"))).count
            const after = span(yield* hub.bounds(room))
            assert.include([before, after], count)
          })
        )
      })

      describe("Sessions", () => {
        const fresh = Effect.map(NodeId, (node): SessionRecord => ({
          session: newSessionId(),
          name: unique("alice"),
          rooms: [unique("room"), unique("room")],
          node
        }))

        it.effect("a token redeems once, with the session's record", () =>
          Effect.gen(function* () {
            const sessions = yield* Sessions
            const record = yield* fresh
            const token = yield* sessions.issue(record)
            const redeemed = yield* sessions.redeem(token)
            assert.deepStrictEqual(Option.map(redeemed, recordOf), Option.some(recordOf(record)))
            assert.isTrue(Option.isNone(yield* sessions.redeem(token)))
            assert.isTrue(Option.isNone(yield* sessions.redeem(unique("no-such-token"))))
          })
        )

        it.effect("a new token replaces the previous one; update keeps the token", () =>
          Effect.gen(function* () {
            const sessions = yield* Sessions
            const record = yield* fresh
            const first = yield* sessions.issue(record)
            const second = yield* sessions.issue(record)
            assert.notStrictEqual(first, second)
            assert.isTrue(Option.isNone(yield* sessions.redeem(first)))

            const renamed = { ...record, name: unique("bob"), rooms: [unique("room")] }
            yield* sessions.update(renamed)
            const redeemed = yield* sessions.redeem(second)
            assert.deepStrictEqual(Option.map(redeemed, recordOf), Option.some(recordOf(renamed)))
          })
        )

        it.effect("a held session redeems within its window, not after it", () =>
          Effect.gen(function* () {
            const sessions = yield* Sessions
            const record = yield* fresh
            const token = yield* sessions.issue(record)
            const held = { ...record, heldUntil: Date.now() + 60_000 }
            yield* sessions.update(held)
            assert.deepStrictEqual(Option.map(yield* sessions.redeem(token), recordOf), Option.some(recordOf(held)))

            const late = yield* fresh
            const lateToken = yield* sessions.issue(late)
            yield* sessions.update({ ...late, heldUntil: Date.now() - 1 })
            assert.isTrue(Option.isNone(yield* sessions.redeem(lateToken)))
          })
        )

        it.effect("expire returns a held session once its window ended, once, and its token is dead", () =>
          Effect.gen(function* () {
            const sessions = yield* Sessions
            const record = yield* fresh
            const token = yield* sessions.issue(record)
            const heldUntil = Date.now() + 60_000
            yield* sessions.update({ ...record, heldUntil })
            const live = yield* fresh
            const liveToken = yield* sessions.issue(live)

            const mine = (expired: ReadonlyArray<SessionRecord>) =>
              expired.filter((r) => r.session === record.session || r.session === live.session).map(recordOf)
            assert.deepStrictEqual(mine(yield* sessions.expire(heldUntil - 1)), [])
            assert.deepStrictEqual(mine(yield* sessions.expire(heldUntil + 1)), [recordOf({ ...record, heldUntil })])
            assert.deepStrictEqual(mine(yield* sessions.expire(heldUntil + 1)), [])
            assert.isTrue(Option.isNone(yield* sessions.redeem(token)))
            // A live session never expires.
            assert.isTrue(Option.isSome(yield* sessions.redeem(liveToken)))
          })
        )

        it.effect("a removed session does not redeem", () =>
          Effect.gen(function* () {
            const sessions = yield* Sessions
            const record = yield* fresh
            const token = yield* sessions.issue(record)
            yield* sessions.remove(record.session)
            assert.isTrue(Option.isNone(yield* sessions.redeem(token)))

            const held = yield* fresh
            const heldToken = yield* sessions.issue(held)
            const heldUntil = Date.now() + 60_000
            yield* sessions.update({ ...held, heldUntil })
            yield* sessions.remove(held.session)
            assert.isTrue(Option.isNone(yield* sessions.redeem(heldToken)))
            const expired = yield* sessions.expire(heldUntil + 1)
            assert.isFalse(expired.some((r) => r.session === held.session))
          })
        )
      })

      describe("Names", () => {
        const owner = (name: string, session = newSessionId()) =>
          Effect.map(NodeId, (node): NameOwner => ({ name, session, node }))

        it.effect("ownership ignores letter case; another session cannot claim the name", () =>
          Effect.gen(function* () {
            const names = yield* Names
            const alice = yield* owner(unique("Alice"))
            assert.isTrue(yield* names.claim(alice))
            assert.deepStrictEqual(
              Option.map(yield* names.owner(alice.name.toUpperCase()), ownerOf),
              Option.some(alice)
            )
            assert.isFalse(yield* names.claim(yield* owner(alice.name.toLowerCase())))
            assert.deepStrictEqual(Option.map(yield* names.owner(alice.name), ownerOf), Option.some(alice))

            // The owner may claim it again, in another spelling.
            const respelled = { ...alice, name: alice.name.toLowerCase() }
            assert.isTrue(yield* names.claim(respelled))
            assert.deepStrictEqual(Option.map(yield* names.owner(alice.name), ownerOf), Option.some(respelled))
            assert.isTrue(Option.isNone(yield* names.owner(unique("nobody"))))
          })
        )

        it.effect("only the owner releases a name; then anyone may claim it", () =>
          Effect.gen(function* () {
            const names = yield* Names
            const alice = yield* owner(unique("alice"))
            assert.isTrue(yield* names.claim(alice))
            const other = yield* owner(alice.name)
            yield* names.release(alice.name, other.session)
            assert.deepStrictEqual(Option.map(yield* names.owner(alice.name), ownerOf), Option.some(alice))

            yield* names.release(alice.name.toUpperCase(), alice.session)
            assert.isTrue(Option.isNone(yield* names.owner(alice.name)))
            assert.isTrue(yield* names.claim(other))
            assert.deepStrictEqual(Option.map(yield* names.owner(alice.name), ownerOf), Option.some(other))
          })
        )

        it.effect("a user takes a guest's name (the guest is returned) but not another user's", () =>
          Effect.gen(function* () {
            const names = yield* Names
            const name = unique("carol")
            const guest = yield* owner(name)
            assert.isTrue(yield* names.claim(guest))

            const user = yield* owner(name.toUpperCase(), userKey(unique("sub")))
            const taken = yield* names.claimForUser(user)
            assert.isTrue(taken.claimed)
            assert.deepStrictEqual(Option.map(taken.evicted, ownerOf), Option.some(guest))
            assert.deepStrictEqual(Option.map(yield* names.owner(name), ownerOf), Option.some(user))

            const again = yield* names.claimForUser(user)
            assert.deepStrictEqual(
              { ...again, evicted: Option.map(again.evicted, ownerOf) },
              {
                claimed: true,
                evicted: Option.none()
              }
            )

            const rival = yield* owner(name, userKey(unique("sub")))
            const refused = yield* names.claimForUser(rival)
            assert.isFalse(refused.claimed)
            assert.isTrue(Option.isNone(refused.evicted))
            assert.isFalse(yield* names.claim(yield* owner(name)))
            assert.deepStrictEqual(Option.map(yield* names.owner(name), ownerOf), Option.some(user))

            const free = yield* names.claimForUser(yield* owner(unique("dave"), userKey(unique("sub"))))
            assert.isTrue(free.claimed)
            assert.isTrue(Option.isNone(free.evicted))
          })
        )

        it.effect("nextGuest gives rising numbers, never the same twice", () =>
          Effect.gen(function* () {
            const names = yield* Names
            const numbers = yield* Effect.all([names.nextGuest, names.nextGuest, names.nextGuest])
            assert.isTrue(numbers[0]! >= 0)
            assert.deepStrictEqual(numbers, [numbers[0]!, numbers[0]! + 1, numbers[0]! + 2])
            const concurrent = yield* Effect.all(
              range(1, 20).map(() => names.nextGuest),
              { concurrency: "unbounded" }
            )
            assert.strictEqual(new Set(concurrent).size, 20)
            assert.isTrue(concurrent.every((n) => n > numbers[2]!))
          })
        )
      })

      describe("Presence", () => {
        it.effect("a user online twice counts once and goes offline with the last connection", () =>
          Effect.gen(function* () {
            const presence = yield* Presence
            const user = userKey(unique("sub"))
            const before = yield* presence.users
            assert.isTrue(yield* presence.online(user, "alice"))
            assert.isFalse(yield* presence.online(user, "alice"))
            assert.strictEqual(yield* presence.users, before + 1)
            assert.isFalse(yield* presence.offline(user))
            assert.strictEqual(yield* presence.users, before + 1)
            assert.isTrue(yield* presence.offline(user))
            assert.strictEqual(yield* presence.users, before)
          })
        )

        it.effect("a guest key is one connection: online once, offline once", () =>
          Effect.gen(function* () {
            const presence = yield* Presence
            const guest = newSessionId()
            const before = yield* presence.users
            assert.isTrue(yield* presence.online(guest, "user1"))
            assert.isFalse(yield* presence.online(guest, "user1"))
            assert.strictEqual(yield* presence.users, before + 1)
            assert.isTrue(yield* presence.offline(guest))
            assert.strictEqual(yield* presence.users, before)
            assert.isFalse(yield* presence.offline(guest))
            assert.isFalse(yield* presence.offline(userKey(unique("never-online"))))
            assert.strictEqual(yield* presence.users, before)
          })
        )

        it.effect("a user in a room twice is announced once: join true then false, leave false then true", () =>
          Effect.gen(function* () {
            const presence = yield* Presence
            const room = unique("room")
            const user = userKey(unique("sub"))
            assert.isTrue(yield* presence.join(room, user, "alice"))
            assert.isFalse(yield* presence.join(room, user, "alice"))
            assert.deepStrictEqual(yield* presence.members(room), ["alice"])
            assert.isFalse(yield* presence.leave(room, user))
            assert.deepStrictEqual(yield* presence.members(room), ["alice"])
            assert.isTrue(yield* presence.leave(room, user))
            assert.deepStrictEqual(yield* presence.members(room), [])
            assert.isFalse(yield* presence.leave(room, user))
          })
        )

        it.effect("a guest joins and leaves a room; leaving a room one is not in says false", () =>
          Effect.gen(function* () {
            const presence = yield* Presence
            const room = unique("room")
            const guest = newSessionId()
            assert.isFalse(yield* presence.leave(room, guest))
            assert.isTrue(yield* presence.join(room, guest, "user1"))
            assert.deepStrictEqual(yield* presence.members(room), ["user1"])
            assert.isTrue(yield* presence.leave(room, guest))
            assert.deepStrictEqual(yield* presence.members(room), [])
            assert.isFalse(yield* presence.leave(room, guest))
          })
        )

        it.effect("members lists each key once, sorted without regard to letter case; rooms are apart", () =>
          Effect.gen(function* () {
            const presence = yield* Presence
            const [room, elsewhere] = [unique("room"), unique("room")]
            const dave = userKey(unique("sub"))
            yield* presence.join(room, newSessionId(), "carol")
            yield* presence.join(room, dave, "Dave")
            yield* presence.join(room, newSessionId(), "alice")
            yield* presence.join(room, dave, "Dave")
            yield* presence.join(room, newSessionId(), "Bob")
            yield* presence.join(elsewhere, newSessionId(), "erin")
            assert.deepStrictEqual(yield* presence.members(room), ["alice", "Bob", "carol", "Dave"])
            assert.deepStrictEqual(yield* presence.members(elsewhere), ["erin"])
            assert.deepStrictEqual(yield* presence.members(unique("empty")), [])
          })
        )

        it.effect("rooms counts each room's members once per user, most members first, up to the limit", () =>
          Effect.gen(function* () {
            const presence = yield* Presence
            const [big, small, gone] = [unique("room"), unique("room"), unique("room")]
            const dave = userKey(unique("sub"))
            const guest = newSessionId()
            yield* presence.online(guest, "bob")
            yield* presence.join(big, newSessionId(), "alice")
            yield* presence.join(big, dave, "Dave")
            yield* presence.join(big, dave, "Dave")
            yield* presence.join(big, guest, "bob")
            yield* presence.join(small, newSessionId(), "carol")
            yield* presence.join(gone, guest, "bob")
            yield* presence.leave(gone, guest)
            yield* presence.offline(guest)
            const ours = (rooms: ReadonlyArray<{ readonly room: string; readonly members: number }>) =>
              rooms.filter((entry) => [big, small, gone].includes(entry.room))
            assert.deepStrictEqual(ours(yield* presence.rooms(1000)), [
              { room: big, members: 3 },
              { room: small, members: 1 }
            ])
            const limited = yield* presence.rooms(1)
            assert.strictEqual(limited.length, 1)
            assert.isAtLeast(limited[0]!.members, 3)
          })
        )

        it.effect("rename changes the name a member is listed under", () =>
          Effect.gen(function* () {
            const presence = yield* Presence
            const [room, other] = [unique("room"), unique("room")]
            const guest = newSessionId()
            yield* presence.online(guest, "user7")
            yield* presence.join(room, guest, "user7")
            yield* presence.join(other, guest, "user7")
            yield* presence.join(room, newSessionId(), "mallory")
            yield* presence.rename(guest, [room, other], "Alice")
            assert.deepStrictEqual(yield* presence.members(room), ["Alice", "mallory"])
            assert.deepStrictEqual(yield* presence.members(other), ["Alice"])
            assert.isTrue(yield* presence.leave(room, guest))
            assert.deepStrictEqual(yield* presence.members(room), ["mallory"])
            yield* presence.offline(guest)
          })
        )

        // Memory has no other nodes; Redis lists the other live nodes where the key is connected. Shared: with one
        // node, a direct message never has to go elsewhere.
        it.effect("on a single node, remoteNodes is empty", () =>
          Effect.gen(function* () {
            const presence = yield* Presence
            const self = yield* NodeId
            const [user, guest] = [userKey(unique("sub")), newSessionId()]
            yield* presence.online(user, "alice")
            yield* presence.online(guest, "user2")
            assert.deepStrictEqual(yield* presence.remoteNodes(user, self), [])
            assert.deepStrictEqual(yield* presence.remoteNodes(guest, self), [])
            yield* presence.offline(user)
            yield* presence.offline(guest)
          })
        )
      })
    })
  })

contract(
  "memory backend",
  Layer.mergeAll(
    Hub.layerMemory({ historyRetain: RETAIN, roomTtl: Duration.minutes(10) }),
    Sessions.layerMemory,
    Names.layerMemory,
    Presence.layerMemory,
    NodeId.layer
  )
)

/** The embedded store in a data directory of its own, removed after the suite. */
contract(
  "embedded store (SQLite)",
  Layer.unwrapScoped(
    Effect.map(TempDir.scoped("contract-"), (dataDir) => SqliteBackend.layer({ dataDir, historyRetain: RETAIN }))
  )
)

/** One node over a real Redis, under a key prefix of its own: its counters start fresh whatever else shares Redis. */
const redisBackend = Layer.unwrapScoped(
  Effect.acquireRelease(Effect.promise(RedisServer.acquire), (redis) => Effect.promise(redis.stop)).pipe(
    Effect.map(({ url }) => RedisBackend.layer({ url, keyPrefix: `${unique("contract")}:`, historyRetain: RETAIN }))
  )
)

describe.skipIf(RedisServer.skipReason !== undefined)(
  `Redis${RedisServer.skipReason === undefined ? "" : ` (skipped: ${RedisServer.skipReason})`}`,
  () => {
    contract("Redis backend", redisBackend)
  }
)
