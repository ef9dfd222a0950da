/**
 * What a member has certainly received, from the last ping it answered: the rules a resume's "changes after" rests on.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Receipts from "../src/server/Receipts.js"

const bytes = (text: string) => new TextEncoder().encode(text)

describe("Receipts", () => {
  it("reads back the ping numbers it sends, and nothing else", () => {
    const ping = Receipts.nextPing()
    expect(Receipts.pingNumber(bytes(String(ping)))).toBe(ping)
    expect(Receipts.now()).toBe(ping)
    for (const foreign of ["", "-1", "1.5", "12a", "x", "9".repeat(16)]) {
      expect(Receipts.pingNumber(bytes(foreign))).toBeUndefined()
    }
  })

  it("a ping covers exactly the changes written before it", () => {
    const log = new Receipts.RevLog()
    // Clock 10: revs 1 and 2 go out; ping 11; clock 11: rev 3; ping 12, 13; clock 13: rev 4.
    log.record(10, 0)
    log.record(10, 1)
    log.record(11, 2)
    log.record(13, 3)
    expect(log.asOf(10, 4)).toBe(0)
    expect(log.asOf(11, 4)).toBe(2)
    expect(log.asOf(12, 4)).toBe(3)
    expect(log.asOf(13, 4)).toBe(3)
    expect(log.asOf(14, 4)).toBe(4)
  })

  it("does not guess for a ping older than what it kept", () => {
    const log = new Receipts.RevLog(2)
    log.record(1, 0)
    log.record(2, 1)
    log.record(3, 2)
    // The entry for clock 1 is gone: ping 1 may have come before rev 1.
    expect(log.asOf(1, 3)).toBeUndefined()
    expect(log.asOf(2, 3)).toBe(1)
    expect(log.asOf(4, 3)).toBe(3)
  })
})
