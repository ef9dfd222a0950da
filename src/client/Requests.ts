/**
 * Requests and their answers, matched by ref. Requests go out in the order they were made, one at a time: only the
 * first is on the wire, once per connection, until it is answered (stop-and-wait). So the order holds when the
 * server refuses one with `rate_limited` (it is written again after a pause that doubles while the refusals go on),
 * and a request whose answer was lost goes out again on the next connection with the same ref, which the server
 * answers without doing it twice. Hints (typing) are the exception: written at once, beside the queue, on the
 * current connection only, and never again. Socket-free: a connection is a `Write`, time is a `Timer`.
 */
import { Deferred, Exit, FiberId } from "effect"
import type * as Protocol from "../protocol/Protocol.js"
import { ChatClientError } from "./ChatClientError.js"

/** A client request without its ref, which `Requests` adds. */
export type Request = Protocol.ClientFrame extends infer F
  ? F extends { readonly ref?: unknown }
    ? Omit<F, "ref">
    : never
  : never

/** Writes a frame on the current connection. */
export type Write = (frame: Protocol.ClientFrame) => void

/** Runs `f` after `ms` milliseconds; the function returned cancels it. */
export type Timer = (f: () => void, ms: number) => () => void

/** The pause before a request refused with `rate_limited` is written again; it doubles up to the maximum. */
export const RETRY_MIN_MS = 100
export const RETRY_MAX_MS = 2000

export interface Requests {
  /** A welcomed connection: the first request is written on it, also when it was written on the one before. */
  readonly attach: (write: Write) => void
  /** No connection: requests wait for the next one. */
  readonly detach: () => void
  /** Queues `request` under a new ref; the deferred completes with its answer. */
  readonly add: (request: Request) => Deferred.Deferred<Protocol.ServerFrame, ChatClientError>
  /**
   * Writes `request` under a new ref at once, ahead of the queue, on the current connection; undefined (nothing
   * written) without one. It is never written again: a refusal (`rate_limited` too) fails it with `Rejected`, and
   * losing the connection first fails it with `Closed`.
   */
  readonly now: (request: Request) => Deferred.Deferred<Protocol.ServerFrame, ChatClientError> | undefined
  /**
   * Completes the request `ref` names with `frame` (an `error` frame fails it with `Rejected`); false when `frame`
   * is not the answer to one of ours. A `rate_limited` refusal keeps the request, to be written again later.
   */
  readonly settle: (ref: string | undefined, frame: Protocol.ServerFrame) => boolean
  /** Fails every request still waiting for its answer. */
  readonly failAll: (error: ChatClientError) => void
}

export interface RequestsOptions {
  /** Refs are `<prefix>-<counter>`; default: random, so that refs of different clients differ. */
  readonly prefix?: string | undefined
  readonly timer?: Timer | undefined
}

interface Pending {
  readonly ref: string
  readonly frame: Protocol.ClientFrame
  readonly answer: Deferred.Deferred<Protocol.ServerFrame, ChatClientError>
}

const realTimer: Timer = (f, ms) => {
  const handle = setTimeout(f, ms)
  return () => clearTimeout(handle)
}

export const make = (options: RequestsOptions = {}): Requests => {
  const prefix = options.prefix ?? Math.random().toString(36).slice(2, 8)
  const timer = options.timer ?? realTimer
  const queue: Array<Pending> = []
  /** Requests written by `now`, waiting for their answer on the current connection. */
  const unqueued = new Map<string, Pending["answer"]>()
  let write: Write | undefined
  let written: Pending | undefined
  let cancelRetry: (() => void) | undefined
  let retryDelay = RETRY_MIN_MS
  let counter = 0

  const pump = () => {
    const head = queue[0]
    if (write === undefined || head === undefined || written === head || cancelRetry !== undefined) return
    written = head
    write(head.frame)
  }

  const retryLater = () => {
    cancelRetry?.()
    cancelRetry = timer(() => {
      cancelRetry = undefined
      pump()
    }, retryDelay)
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS)
  }

  const nextRef = () => `${prefix}-${(counter++).toString(36)}`
  const complete = (answer: Pending["answer"], frame: Protocol.ServerFrame) =>
    Deferred.unsafeDone(
      answer,
      frame.type === "error"
        ? Exit.fail(new ChatClientError({ reason: "Rejected", code: frame.code, message: frame.message }))
        : Exit.succeed(frame)
    )
  const failUnqueued = (error: ChatClientError) => {
    for (const answer of unqueued.values()) Deferred.unsafeDone(answer, Exit.fail(error))
    unqueued.clear()
  }

  return {
    attach: (next) => {
      write = next
      written = undefined
      pump()
    },
    detach: () => {
      write = undefined
      // An error captures a stack: made only when a hint is waiting for it, not at every lost connection.
      if (unqueued.size > 0) {
        failUnqueued(new ChatClientError({ reason: "Closed", message: "the connection was lost before the answer" }))
      }
    },
    add: (request) => {
      const ref = nextRef()
      const answer = Deferred.unsafeMake<Protocol.ServerFrame, ChatClientError>(FiberId.none)
      queue.push({ ref, frame: { ...request, ref } as Protocol.ClientFrame, answer })
      pump()
      return answer
    },
    now: (request) => {
      if (write === undefined) return undefined
      const ref = nextRef()
      const answer = Deferred.unsafeMake<Protocol.ServerFrame, ChatClientError>(FiberId.none)
      unqueued.set(ref, answer)
      write({ ...request, ref } as Protocol.ClientFrame)
      return answer
    },
    settle: (ref, frame) => {
      const hint = ref === undefined ? undefined : unqueued.get(ref)
      if (hint !== undefined) {
        unqueued.delete(ref!)
        complete(hint, frame)
        return true
      }
      const index = ref === undefined ? -1 : queue.findIndex((pending) => pending.ref === ref)
      if (index === -1) return false
      const pending = queue[index]!
      if (written === pending) written = undefined
      if (frame.type === "error" && frame.code === "rate_limited") {
        retryLater()
        return true
      }
      retryDelay = RETRY_MIN_MS
      queue.splice(index, 1)
      pump()
      complete(pending.answer, frame)
      return true
    },
    failAll: (error) => {
      failUnqueued(error)
      cancelRetry?.()
      cancelRetry = undefined
      for (const { answer } of queue.splice(0)) Deferred.unsafeDone(answer, Exit.fail(error))
    }
  }
}
