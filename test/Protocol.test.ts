import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as Protocol from "../src/Protocol.js"

describe("Protocol", () => {
  it("decodes a send", () => {
    const frame = Protocol.decodeClientFrame(`{"type":"send","room":"lobby","text":"hi","ref":"1"}`)
    expect(Either.getOrThrow(frame)).toEqual({ type: "send", room: "lobby", text: "hi", ref: "1" })
  })
})
