/**
 * What a peer is known to have received. TCP keeps order and a WebSocket peer answers a ping only after reading
 * everything written before it, so a pong proves receipt of every frame that went out before its ping. A frame
 * written to a socket is not yet received: a peer that dies (a cut network, a killed tab) loses what was in flight,
 * and the server learns of it only later.
 *
 * Every ping the server sends is numbered from one process-wide clock, carried as the ping's payload and echoed in
 * the pong (RFC 6455 §5.5.3). A frame written while the clock reads `n` went out before every ping numbered above
 * `n` and after every ping numbered `n` or below.
 */
let clock = 0

/** The clock now: a frame written now precedes exactly the pings numbered above it. */
export const now = (): number => clock

/** The number of a ping about to be sent. */
export const nextPing = (): number => ++clock

/** A pong's payload as a ping number; undefined when it is not one of ours (an unsolicited or foreign pong). */
export const pingNumber = (payload: Uint8Array): number | undefined => {
  if (payload.length === 0 || payload.length > 15) return undefined
  let value = 0
  for (let i = 0; i < payload.length; i++) {
    const digit = payload[i]! - 48
    if (digit < 0 || digit > 9) return undefined
    value = value * 10 + digit
  }
  return value
}

/**
 * A room's changes as its members' pings saw them: for each clock reading under which changes went out, the room's
 * rev before the first of them. So the rev a member has certainly received is known from the last ping it answered.
 * Bounded (a room logs one entry per batch of changes): a ping older than the log is answered `undefined`.
 */
export class RevLog {
  private readonly readings: Array<number> = []
  private readonly befores: Array<number> = []
  /** The reading of the newest entry dropped from the log; -1 while nothing has been dropped. */
  private dropped = -1

  constructor(private readonly capacity = 64) {}

  /** A change after rev `previous` goes out now, with the clock at `reading`. */
  record(reading: number, previous: number): void {
    const last = this.readings.length - 1
    if (last >= 0 && this.readings[last] === reading) return
    this.readings.push(reading)
    this.befores.push(previous)
    if (this.readings.length > this.capacity) {
      this.dropped = this.readings.shift()!
      this.befores.shift()
    }
  }

  /** The rev of the last change written before ping `ping`, with the room at `lastRev` now. */
  asOf(ping: number, lastRev: number): number | undefined {
    // A dropped entry at or after the ping may hold the first change the ping did not cover.
    if (ping <= this.dropped) return undefined
    for (let i = 0; i < this.readings.length; i++) if (this.readings[i]! >= ping) return this.befores[i]
    return lastRev
  }
}
