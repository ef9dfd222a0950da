/** Which delivered messages the client shows, and where a resume continues. */
import { assert, describe, it } from "@effect/vitest"
import * as Seen from "../src/client/Seen.js"
import type * as Protocol from "../src/protocol/Protocol.js"

const message = (room: string, id: number, at = id * 1000): Protocol.Message => ({
  type: "message",
  room,
  id,
  from: "ann",
  text: `${room} ${id}`,
  at
})

describe("Seen", () => {
  it("admits a message once: a repeat in a join history or a resume is not shown again", () => {
    const seen = Seen.make()
    assert.isTrue(seen.admit(message("lobby", 1)))
    assert.isFalse(seen.admit(message("lobby", 1)))
    assert.isTrue(seen.admit(message("dev", 1)))
    assert.isFalse(seen.admit(message("dev", 1)))
  })

  it("takes a known id with another time for a new message: a restarted server numbers from 1 again", () => {
    const seen = Seen.make()
    assert.isTrue(seen.admit(message("lobby", 1, 5000)))
    assert.isTrue(seen.admit(message("lobby", 1, 9000)))
    assert.isFalse(seen.admit(message("lobby", 1, 9000)))
  })

  it("gives a resume the id of the last message admitted per room, 0 for a room without any", () => {
    const seen = Seen.make()
    assert.deepStrictEqual(seen.since(["lobby"]), { lobby: 0 })
    for (const id of [1, 2, 3]) seen.admit(message("lobby", id))
    seen.admit(message("dev", 9))
    seen.admit(message("lobby", 2))
    assert.deepStrictEqual(seen.since(["lobby", "dev", "ops"]), { lobby: 3, dev: 9, ops: 0 })
  })

  it("remembers the last 1000 messages of each room, forgetting the oldest first", () => {
    const seen = Seen.make()
    for (let id = 1; id <= Seen.DEFAULT_PER_ROOM + 1; id++) assert.isTrue(seen.admit(message("lobby", id)))
    assert.isFalse(seen.admit(message("lobby", 2)))
    assert.isFalse(seen.admit(message("lobby", Seen.DEFAULT_PER_ROOM + 1)))
    assert.isTrue(seen.admit(message("lobby", 1)))

    const small = Seen.make(2)
    for (const id of [1, 2, 3]) small.admit(message("lobby", id))
    assert.isFalse(small.admit(message("lobby", 3)))
    assert.isTrue(small.admit(message("lobby", 1)))
  })

  it("tells how a repeated message changed since it was admitted, once, as change events", () => {
    const seen = Seen.make()
    const options = { now: 77, reactions: true }
    seen.admit({ ...message("lobby", 1), reactions: { "👍": ["bob"] } })
    seen.admit(message("lobby", 2))
    seen.admit(message("lobby", 3))
    assert.deepStrictEqual(seen.changes({ ...message("lobby", 1), reactions: { "👍": ["bob"] } }, options), [])

    const later: ReadonlyArray<Protocol.Message> = [
      { ...message("lobby", 1), text: "better", edited: 50, reactions: { "❤️": ["cy"] } },
      { ...message("lobby", 2), text: "", deleted: true },
      { ...message("lobby", 3), reactions: { "👍": ["ann", "bob"] } }
    ]
    assert.deepStrictEqual(
      later.flatMap((m) => seen.changes(m, options)),
      [
        { type: "edited", room: "lobby", id: 1, text: "better", at: 50 },
        { type: "reaction", room: "lobby", id: 1, emoji: "👍", name: "bob", on: false },
        { type: "reaction", room: "lobby", id: 1, emoji: "❤️", name: "cy", on: true },
        { type: "deleted", room: "lobby", id: 2, at: 77 },
        { type: "reaction", room: "lobby", id: 3, emoji: "👍", name: "ann", on: true },
        { type: "reaction", room: "lobby", id: 3, emoji: "👍", name: "bob", on: true }
      ]
    )
    // Told once: the same history again holds no change.
    assert.deepStrictEqual(
      later.flatMap((m) => seen.changes(m, options)),
      []
    )
    // With the feature, a message without reactions has none; without it, nothing is said about them.
    assert.deepStrictEqual(seen.changes({ ...message("lobby", 3) }, { now: 0, reactions: false }), [])
    assert.deepStrictEqual(
      seen.changes({ ...message("lobby", 3) }, options).map((c) => c.type === "reaction" && [c.name, c.on]),
      [
        ["ann", false],
        ["bob", false]
      ]
    )
  })

  it("does not take a history for a change that live events told already", () => {
    const seen = Seen.make()
    const options = { now: 0, reactions: true }
    seen.admit(message("lobby", 1))
    seen.admit(message("lobby", 2))
    seen.track({ type: "edited", room: "lobby", id: 1, text: "new", at: 5 })
    seen.track({ type: "reaction", room: "lobby", id: 1, emoji: "👍", name: "bob", on: true })
    seen.track({ type: "reaction", room: "lobby", id: 1, emoji: "🎉", name: "bob", on: true })
    seen.track({ type: "reaction", room: "lobby", id: 1, emoji: "🎉", name: "bob", on: false })
    seen.track({ type: "deleted", room: "lobby", id: 2, at: 5 })
    assert.deepStrictEqual(
      seen.changes({ ...message("lobby", 1), text: "new", reactions: { "👍": ["bob"] } }, options),
      []
    )
    assert.deepStrictEqual(seen.changes({ ...message("lobby", 2), text: "", deleted: true }, options), [])
    // A restarted server's message 1 is another message: no change of the old one.
    assert.deepStrictEqual(seen.changes({ ...message("lobby", 1, 99_000), text: "other" }, options), [])
  })
})
