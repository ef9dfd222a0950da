import { describe, expect, it } from "@effect/vitest"
import type { RoomEvent } from "../src/backend/Hub.js"
import * as JsonDialect from "../src/dialect/JsonDialect.js"
import * as PlainDialect from "../src/dialect/PlainDialect.js"
import type { Renderer } from "../src/server/Connection.js"
import * as FanoutPlan from "../src/server/FanoutPlan.js"

/** The text payloads of concatenated unmasked WebSocket text frames. */
const payloads = (bytes: Uint8Array): Array<string> => {
  const buffer = Buffer.from(bytes)
  const out: Array<string> = []
  let at = 0
  while (at < buffer.length) {
    expect(buffer[at]).toBe(0x81)
    let length = buffer[at + 1]!
    let header = 2
    if (length === 126) {
      length = buffer.readUInt16BE(at + 2)
      header = 4
    } else if (length === 127) {
      length = Number(buffer.readBigUInt64BE(at + 2))
      header = 10
    }
    out.push(buffer.subarray(at + header, at + header + length).toString("utf8"))
    at += header + length
  }
  return out
}

const member = (id: string, renderer: Renderer) => {
  const renames = new Set<string>()
  return {
    id,
    renderer,
    session: { id },
    key: id,
    firstSightOfRename: (eventId: string) => !renames.has(eventId) && renames.add(eventId) !== undefined
  }
}

type TestMember = ReturnType<typeof member>

const message = (id: number, text = `m${id}`): RoomEvent => ({
  _tag: "Message",
  frame: { type: "message", room: "r", id, from: "ann", text, at: 1000 + id }
})
const joined = (session: string, name: string): RoomEvent => ({
  _tag: "Joined",
  session,
  frame: { type: "joined", room: "r", name, at: 5 }
})

/** Runs the plan and collects, per member, its writes as payload lists with their frame counts. */
const run = (events: ReadonlyArray<RoomEvent>, members: ReadonlyArray<TestMember>) => {
  const writes = new Map<string, Array<{ payloads: Array<string>; frames: number; parts: number }>>()
  FanoutPlan.plan(events, members, (m, parts, frames) => {
    const list = writes.get(m.id) ?? []
    list.push({ payloads: parts.flatMap(payloads), frames, parts: parts.length })
    writes.set(m.id, list)
  })
  return writes
}

describe("FanoutPlan", () => {
  it("gives every member all of a batch's messages in one write, in order, in its own dialect", () => {
    const writes = run(
      [message(1), message(2)],
      [member("a", JsonDialect.renderer), member("p", PlainDialect.renderer)]
    )
    expect(writes.get("a")).toEqual([
      {
        payloads: [
          JSON.stringify({ type: "message", room: "r", id: 1, from: "ann", text: "m1", at: 1001 }),
          JSON.stringify({ type: "message", room: "r", id: 2, from: "ann", text: "m2", at: 1002 })
        ],
        frames: 2,
        parts: 1
      }
    ])
    expect(writes.get("p")).toEqual([{ payloads: ["[ann]: m1", "[ann]: m2"], frames: 2, parts: 1 }])
  })

  it("encodes a run of messages once per dialect and shares the bytes between members", () => {
    let renders = 0
    const counting: Renderer = {
      ...JsonDialect.renderer,
      render: (frame) => {
        renders++
        return JsonDialect.renderer.render(frame)
      }
    }
    const shared: Array<Uint8Array> = []
    const members = Array.from({ length: 50 }, (_, i) => member(`m${i}`, counting))
    FanoutPlan.plan([message(1), message(2), message(3)], members, (_m, parts) => shared.push(...parts))
    expect(renders).toBe(3)
    expect(shared).toHaveLength(50)
    expect(new Set(shared).size).toBe(1)
  })

  it("sends presence to the other members only, and plain members no presence at all", () => {
    const writes = run(
      [message(1), joined("b", "bob"), message(2)],
      [member("a", JsonDialect.renderer), member("b", JsonDialect.renderer), member("p", PlainDialect.renderer)]
    )
    expect(writes.get("a")![0]!.payloads.map((p) => JSON.parse(p).type)).toEqual(["message", "joined", "message"])
    expect(writes.get("a")![0]).toMatchObject({ frames: 3, parts: 3 })
    expect(writes.get("b")![0]!.payloads.map((p) => JSON.parse(p).type)).toEqual(["message", "message"])
    expect(writes.get("p")).toEqual([{ payloads: ["[ann]: m1", "[ann]: m2"], frames: 2, parts: 2 }])
  })

  it("shows a rename once to each member, the renamed user's own connection included", () => {
    const renamed: RoomEvent = {
      _tag: "Renamed",
      session: "b",
      eventId: "e1",
      frame: { type: "renamed", from: "bob", to: "rob", at: 9 }
    }
    const members = [member("a", JsonDialect.renderer), member("b", JsonDialect.renderer)]
    const first = run([renamed], members)
    expect(first.get("a")![0]!.payloads).toHaveLength(1)
    expect(first.get("b")![0]!.payloads).toHaveLength(1)
    // the same event from another shared room
    expect(run([renamed], members).size).toBe(0)
  })

  it("leaves out the presence a member already knows, and only that", () => {
    const early = joined("b", "bob")
    const late = joined("c", "cat")
    const members = [member("a", JsonDialect.renderer), member("d", JsonDialect.renderer)]
    const writes = new Map<string, Array<string>>()
    FanoutPlan.plan(
      [early, message(1), late],
      members,
      (m, parts) => writes.set(m.id, parts.flatMap(payloads)),
      (m, event) => m.id === "d" && event === early
    )
    expect(writes.get("a")!.map((p) => JSON.parse(p).name ?? "message")).toEqual(["bob", "message", "cat"])
    expect(writes.get("d")!.map((p) => JSON.parse(p).name ?? "message")).toEqual(["message", "cat"])
  })

  it("writes nothing for an empty batch or to members with nothing to show", () => {
    expect(run([], [member("a", JsonDialect.renderer)]).size).toBe(0)
    expect(run([joined("b", "bob")], [member("p", PlainDialect.renderer)]).size).toBe(0)
  })
})
