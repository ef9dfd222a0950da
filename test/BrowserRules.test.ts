import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Server from "../src/protocol/Protocol.js"
import * as Browser from "../web/protocol.js"

// The browser build cannot import src/ (no bundler, no `effect`), so web/protocol.ts keeps its own copy of the
// name, room and text rules. These properties keep the copy equal to the server's rules.
describe("web/protocol.ts agrees with src/Protocol.ts", () => {
  const tricky = fc.oneof(
    fc.string({ maxLength: 70 }),
    fc.string({ unit: fc.constantFrom(..."aZ09_.-useUSER "), maxLength: 70 }),
    fc.constantFrom("user1", "USER22", "useR", "x".repeat(32), "x".repeat(33), "x".repeat(64), "x".repeat(65))
  )

  it("on names and rooms", () => {
    fc.assert(
      fc.property(tricky, (s) => {
        expect(Browser.isValidName(s)).toBe(Server.isValidName(s))
        expect(Browser.isValidRoom(s)).toBe(Server.isValidRoom(s))
        expect(Browser.nameKey(s)).toBe(Server.nameKey(s))
      }),
      { numRuns: 3000 }
    )
  })

  it("on message text", () => {
    const text = fc.oneof(
      fc.string({ maxLength: 50 }),
      fc.constantFrom(" \u00a0\t", "😀".repeat(4000), "😀".repeat(4001), "a".repeat(4000), "a".repeat(4001))
    )
    fc.assert(
      fc.property(text, (s) => Browser.checkText(s) === Server.checkText(s)),
      { numRuns: 1000 }
    )
    expect(Browser.SUBPROTOCOL).toBe(Server.SUBPROTOCOL)
    expect(Browser.MAX_TEXT_CODE_POINTS).toBe(Server.MAX_TEXT_CODE_POINTS)
  })
})
