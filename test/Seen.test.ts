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
})
