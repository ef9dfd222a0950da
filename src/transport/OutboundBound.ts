/**
 * The bound on what a connection may fall behind, as a pure decision. The outbound path writes straight to the TCP
 * socket (no queue of our own), so what a peer has not taken is the socket's backlog; a connection past either
 * limit is a slow consumer and is cut (4008) instead of growing the server's memory.
 */

export interface OutboundLimits {
  /** Bytes waiting in the socket (written, not yet taken by the peer). */
  readonly maxBufferedBytes: number
  /** Messages written while a backlog persisted: a peer taking a trickle of a flood is slow too. */
  readonly maxQueuedMessages: number
}

/**
 * Whether `messages` more messages may be written to a socket with `backlog` bytes waiting, given `waiting`
 * messages written since it was last drained: the new `waiting` count, or `"cut"`.
 */
export const admit = (backlog: number, waiting: number, messages: number, limits: OutboundLimits): number | "cut" => {
  if (backlog > limits.maxBufferedBytes) return "cut"
  const next = backlog === 0 ? 0 : waiting + messages
  return next > limits.maxQueuedMessages ? "cut" : next
}
