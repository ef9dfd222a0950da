import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fc from "fast-check"
import * as Protocol from "../src/protocol/Protocol.js"

const decode = (value: unknown) => Protocol.decodeClientFrame(typeof value === "string" ? value : JSON.stringify(value))

describe("decodeClientFrame", () => {
  it("decodes every request type", () => {
    const frames = [
      { type: "hello", name: "ann", rooms: ["lobby"], resume: { token: "t", since: { lobby: 3 } } },
      { type: "send", room: "lobby", text: "hi", ref: "1" },
      { type: "join", room: "x" },
      { type: "leave", room: "x" },
      { type: "nick", name: "bob" },
      { type: "direct", to: "bob", text: "psst" },
      { type: "history", room: "x", before: 10, limit: 5 },
      { type: "who", room: "x" },
      { type: "ping", ref: "p" }
    ]
    for (const frame of frames) expect(Either.getOrThrow(decode(frame))).toEqual(frame)
  })

  it("fills resume.since with an empty record when absent", () => {
    expect(Either.getOrThrow(decode({ type: "hello", resume: { token: "t" } }))).toEqual({
      type: "hello",
      resume: { token: "t", since: {} }
    })
  })

  it("drops unknown fields, including __proto__ and constructor keys", () => {
    const frame = Either.getOrThrow(
      decode(`{"type":"ping","__proto__":{"polluted":1},"constructor":{"x":1},"extra":1}`)
    )
    expect(frame).toEqual({ type: "ping" })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it("rejects with a short, readable reason", () => {
    const cases: Array<[unknown, RegExp]> = [
      ["{nope", /JSON|Expected/],
      [{ type: "teleport" }, /unknown frame type "teleport"/],
      [{ type: "send", room: "lobby" }, /text/],
      [{ type: "send", room: 1, text: "x" }, /room/],
      [{ type: "history", room: "x", limit: 0 }, /limit/],
      [{ type: "history", room: "x", before: 1e400 }, /before/],
      [{ type: "history", room: "x", before: -1 }, /before/],
      [{ type: "ping", ref: "r".repeat(65) }, /ref/],
      ["[]", /./],
      ["null", /./],
      ["1".repeat(10), /./]
    ]
    for (const [input, reason] of cases) {
      const result = decode(input)
      expect(Either.isLeft(result), JSON.stringify(input)).toBe(true)
      const message = Either.getLeft(result).pipe((o) => (o._tag === "Some" ? o.value.message : ""))
      expect(message).toMatch(reason)
      expect(message.length).toBeLessThanOrEqual(201)
    }
  })

  it("never throws on arbitrary input", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify(v))
        ),
        (text) => {
          const result = Protocol.decodeClientFrame(text)
          return Either.isLeft(result) || Protocol.CLIENT_TYPES.has(result.right.type)
        }
      ),
      { numRuns: 2000 }
    )
  })

  it("survives deeply nested JSON, also inside a field", () => {
    const deep = "[".repeat(20_000) + "]".repeat(20_000)
    expect(Either.isLeft(Protocol.decodeClientFrame(deep))).toBe(true)
    const nestedField = `{"type":"ping","ref":${deep}}`
    expect(Either.getLeft(Protocol.decodeClientFrame(nestedField)).pipe((o) => o._tag === "Some")).toBe(true)
  })

  it("keeps a usable ref of a refused frame, so the error can carry it", () => {
    const refused = Protocol.decodeClientFrame(`{"type":"send","room":"lobby","ref":"r1"}`)
    expect(Either.getLeft(refused).pipe((o) => (o._tag === "Some" ? o.value.ref : undefined))).toBe("r1")
    const longRef = Protocol.decodeClientFrame(JSON.stringify({ type: "nope", ref: "x".repeat(65) }))
    expect(Either.getLeft(longRef).pipe((o) => (o._tag === "Some" ? o.value.ref : "?"))).toBeUndefined()
  })
})

describe("names, rooms and text", () => {
  const nameChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")

  it("accepts 1-32 ASCII letters, digits, _ - . except user<digits>", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: nameChar, minLength: 1, maxLength: 32 }),
        (name) => Protocol.isValidName(name) === !/^user[0-9]+$/i.test(name)
      )
    )
  })

  it("rejects names with any other character or length", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), (name) => {
        const valid = /^[A-Za-z0-9_.-]{1,32}$/.test(name) && !/^user[0-9]+$/i.test(name)
        return Protocol.isValidName(name) === valid
      }),
      { numRuns: 2000 }
    )
    for (const bad of ["", "a b", "é", "x".repeat(33), "tab\t", "nul\u0000", "User42"]) {
      expect(Protocol.isValidName(bad)).toBe(false)
    }
  })

  it("accepts rooms of 1-64 allowed characters", () => {
    fc.assert(
      fc.property(fc.string({ unit: nameChar, minLength: 1, maxLength: 64 }), (room) => Protocol.isValidRoom(room))
    )
    expect(Protocol.isValidRoom("x".repeat(65))).toBe(false)
    expect(Protocol.isValidRoom("a/b")).toBe(false)
  })

  it("folds case for name comparison", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: nameChar, minLength: 1, maxLength: 32 }),
        (name) => Protocol.nameKey(name) === Protocol.nameKey(name.toUpperCase())
      )
    )
  })

  it("counts text length in code points and refuses blank text", () => {
    expect(Protocol.checkText("a".repeat(4000))).toBeUndefined()
    expect(Protocol.checkText("a".repeat(4001))).toBe("too_long")
    expect(Protocol.checkText("😀".repeat(4000))).toBeUndefined()
    expect(Protocol.checkText("😀".repeat(4001))).toBe("too_long")
    expect(Protocol.checkText(" \t\n\u00a0\u2003")).toBe("blank")
    expect(Protocol.checkText("")).toBe("blank")
  })
})

describe("server frames", () => {
  it("round-trip through encode and decodeServerFrame", () => {
    const frames: Array<Protocol.ServerFrame> = [
      { type: "welcome", protocol: 1, name: "a", rooms: ["lobby"], users: 1, resume: "t", resumed: false },
      { type: "message", room: "lobby", id: 1, from: "a", text: "hi", at: 1 },
      { type: "history", room: "lobby", messages: [], more: false },
      { type: "error", code: "invalid_frame", message: "m", ref: "r" }
    ]
    for (const frame of frames)
      expect(Either.getOrThrow(Protocol.decodeServerFrame(Protocol.encode(frame)))).toEqual(frame)
  })

  it("refuses what a server must never send, naming why", () => {
    const refused: Array<[string, RegExp]> = [
      ["{", /invalid JSON/],
      ["[1]", /unknown frame type/],
      ['{"type":"teleport"}', /unknown frame type "teleport"/],
      ['{"type":"message","room":"lobby","id":"1","from":"a","text":"hi","at":1}', /id/],
      ['{"type":"ack"}', /ref/]
    ]
    for (const [text, why] of refused) {
      const decoded = Protocol.decodeServerFrame(text)
      expect(Either.isLeft(decoded)).toBe(true)
      if (Either.isLeft(decoded)) expect(decoded.left).toMatch(why)
    }
  })
})
