import { describe, expect, it } from "@effect/vitest"
import { admit } from "../src/transport/OutboundBound.js"

const limits = { maxBufferedBytes: 1000, maxQueuedMessages: 5 }

describe("OutboundBound.admit", () => {
  it("lets a peer that keeps up take any number of messages", () => {
    let waiting = 0
    for (let i = 0; i < 10_000; i++) {
      const verdict = admit(0, waiting, 3, limits)
      expect(verdict).toBe(0)
      waiting = verdict as number
    }
  })

  it("cuts a peer whose unread bytes pass the bound, whatever the message count", () => {
    expect(admit(1000, 0, 1, limits)).toBe(1)
    expect(admit(1001, 0, 1, limits)).toBe("cut")
  })

  it("counts messages written behind a backlog that never drains, and cuts past the bound", () => {
    let waiting = 0
    const verdicts: Array<number | "cut"> = []
    for (let i = 0; i < 6; i++) {
      const verdict = admit(10, waiting, 1, limits)
      verdicts.push(verdict)
      if (verdict !== "cut") waiting = verdict
    }
    expect(verdicts).toEqual([1, 2, 3, 4, 5, "cut"])
  })

  it("forgets the count once the backlog drained", () => {
    expect(admit(10, 4, 1, limits)).toBe(5)
    expect(admit(0, 5, 1, limits)).toBe(0)
    expect(admit(10, 0, 2, limits)).toBe(2)
  })
})
