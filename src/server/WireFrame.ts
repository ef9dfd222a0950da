/**
 * Pre-built WebSocket frames. A server's frames are unmasked, so one buffer holding a batch of frames can be written
 * unchanged to every member of a room: the fan-out encodes once per batch, not once per recipient, and each member
 * costs one socket write (EFFECT-NOTES, "Fan-out speed").
 */

/** One unfragmented text frame (FIN, opcode 1) around `payload`. */
export const textFrame = (payload: Buffer): Buffer => {
  const frame = Buffer.allocUnsafe(headerLength(payload.length) + payload.length)
  payload.copy(frame, writeHeader(frame, 0, payload.length))
  return frame
}

const headerLength = (length: number) => (length < 126 ? 2 : length < 65536 ? 4 : 10)

const writeHeader = (frame: Buffer, at: number, length: number): number => {
  frame[at] = 0x81
  if (length < 126) {
    frame[at + 1] = length
    return at + 2
  }
  if (length < 65536) {
    frame[at + 1] = 126
    frame.writeUInt16BE(length, at + 2)
    return at + 4
  }
  frame[at + 1] = 127
  frame.writeBigUInt64BE(BigInt(length), at + 2)
  return at + 10
}

/** A text frame of `payload`, encoded straight into one buffer (no intermediate copy of the payload). */
export const textFrameOf = (payload: string): Buffer => {
  const length = Buffer.byteLength(payload, "utf8")
  const frame = Buffer.allocUnsafe(headerLength(length) + length)
  frame.write(payload, writeHeader(frame, 0, length), "utf8")
  return frame
}

/** Text frames for each payload, concatenated in one buffer. */
export const textFrames = (payloads: ReadonlyArray<string>): Buffer => {
  if (payloads.length === 1) return textFrameOf(payloads[0]!)
  const lengths = payloads.map((payload) => Buffer.byteLength(payload, "utf8"))
  let total = 0
  for (const length of lengths) total += headerLength(length) + length
  const frames = Buffer.allocUnsafe(total)
  let at = 0
  payloads.forEach((payload, i) => {
    at = writeHeader(frames, at, lengths[i]!)
    at += frames.write(payload, at, "utf8")
  })
  return frames
}
