/** The hello a client sends on each connection, and how the session's name and rooms follow the server. */
import { assert, describe, it } from "@effect/vitest"
import * as SessionState from "../src/client/SessionState.js"
import type * as Protocol from "../src/protocol/Protocol.js"

const welcome = (name: string, rooms: ReadonlyArray<string>): typeof Protocol.Welcome.Type => ({
  type: "welcome",
  protocol: 1,
  name,
  rooms,
  users: 1,
  resume: "token-1",
  resumed: false
})

const since = (rooms: ReadonlyArray<string>) => Object.fromEntries(rooms.map((room) => [room, 41]))

describe("SessionState", () => {
  it("asks for the name and rooms it was given, without resume, before any welcome", () => {
    assert.deepStrictEqual(SessionState.make({}).hello(since), { type: "hello" })
    assert.deepStrictEqual(SessionState.make({ name: "ann", rooms: ["dev"] }).hello(since), {
      type: "hello",
      name: "ann",
      rooms: ["dev"]
    })
  })

  it("reconnects with the session's name and rooms and resumes with the token and each room's last id", () => {
    const state = SessionState.make({ name: "ann" })
    state.welcomed(welcome("ann", ["lobby", "dev"]))
    assert.deepStrictEqual(state.hello(since), {
      type: "hello",
      name: "ann",
      rooms: ["lobby", "dev"],
      resume: { token: "token-1", since: { lobby: 41, dev: 41 } }
    })
  })

  it("does not ask for a name the server assigned, which it would refuse", () => {
    const state = SessionState.make({ name: "taken" })
    state.welcomed(welcome("user12", ["lobby"]))
    assert.strictEqual(state.name(), "user12")
    assert.notProperty(state.hello(since), "name")
  })

  it("follows joins, leaves and renames of its own, and ignores other members'", () => {
    const state = SessionState.make({ name: "ann" })
    state.welcomed(welcome("ann", ["lobby"]))
    state.observe({ type: "members", room: "dev", names: ["ann", "bob"] })
    state.joined("ops")
    state.joined("ops")
    assert.deepStrictEqual(state.rooms(), ["lobby", "dev", "ops"])

    state.observe({ type: "left", room: "dev", name: "bob", at: 0 })
    state.observe({ type: "renamed", from: "bob", to: "rob", at: 0 })
    assert.deepStrictEqual([state.name(), state.rooms()], ["ann", ["lobby", "dev", "ops"]])

    state.observe({ type: "left", room: "dev", name: "ANN", at: 0 })
    state.left("ops")
    state.observe({ type: "renamed", from: "Ann", to: "anna", at: 0 })
    assert.deepStrictEqual([state.name(), state.rooms()], ["anna", ["lobby"]])
    state.renamed("annie")
    assert.strictEqual(state.hello(since).name, "annie")
  })
})
