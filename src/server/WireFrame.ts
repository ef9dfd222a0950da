/**
 * Pre-built WebSocket frames. A server's frames are unmasked, so one buffer holding a batch of frames can be written
 * unchanged to every member of a room: the fan-out encodes once per batch, not once per recipient, and each member
 * costs one socket write (EFFECT-NOTES, "Fan-out speed").
 */

/** One unfragmented text frame (FIN, opcode 1) around `payload`. */
export const textFrame = (payload: Buffer): Buffer => {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  payload.copy(frame, headerLength)
  return frame
}

/** Text frames for each payload, concatenated. */
export const textFrames = (payloads: ReadonlyArray<string>): Buffer =>
  payloads.length === 1
    ? textFrame(Buffer.from(payloads[0]!, "utf8"))
    : Buffer.concat(payloads.map((payload) => textFrame(Buffer.from(payload, "utf8"))))
