/**
 * The nodes of a cluster and whether they live. Each node beats every `heartbeat` into the `nodes` zset (Redis's
 * clock), refreshing the TTL of its presence keys; a node silent for `deadAfter` is dead: live nodes bury it —
 * its presence goes, its sessions become held from its last beat so their clients can resume elsewhere — well
 * within the 30 s the protocol allows.
 *
 * A node also heals its own state. Redis may lose it (a restart without persistence), the node may have been
 * buried while cut off, or writes may have failed during an outage; so after every reconnect, and whenever a beat
 * finds the node unknown or stale, the backends' `onRestore` steps write this node's state back from memory.
 */
import { Context, Duration, Effect, Layer, Queue, Scope } from "effect"
import type { BackendError } from "../backend/BackendError.js"
import { NodeId } from "../backend/NodeId.js"
import { RedisClient } from "./RedisClient.js"
import { APPLY_HELD_STATE, script } from "./RedisKeys.js"

export interface RedisNodesOptions {
  readonly heartbeat: Duration.Duration
  readonly deadAfter: Duration.Duration
  /** How long a dropped session stays resumable: a dead node's sessions are held this long from its last beat. */
  readonly resumeWindow: Duration.Duration
}

export const defaults: RedisNodesOptions = {
  heartbeat: Duration.seconds(3),
  deadAfter: Duration.seconds(10),
  resumeWindow: Duration.minutes(2)
}

export interface RedisNodesService {
  readonly node: string
  readonly deadAfterMs: number
  readonly resumeWindowMs: number
  /** TTL of this node's presence keys: they outlive a few missed beats, and vanish if the node is gone. */
  readonly nodeKeyTtlMs: number
  /** Adds a step that writes this node's state back into Redis; steps run in the order they were added. */
  readonly onRestore: (restore: Effect.Effect<void, BackendError>) => Effect.Effect<void, never, Scope.Scope>
  /** A resume on another node took `session` over: what this node remembers of it is stale. */
  readonly takenOver: (session: string) => void
  readonly onTakenOver: (forget: (session: string) => void) => Effect.Effect<void, never, Scope.Scope>
}

export class RedisNodes extends Context.Tag("effect-chat/RedisNodes")<RedisNodes, RedisNodesService>() {
  static layer = (options: Partial<RedisNodesOptions> = {}) =>
    Layer.scoped(RedisNodes, make({ ...defaults, ...options }))
}

/** Returns 1 when the node was unknown or had been silent for `deadAfter`: its state may be gone. */
const BEAT = script(`
local node, deadAfter, ttl = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local now = nowMs()
local previous = tonumber(redis.call('ZSCORE', key('nodes'), node))
redis.call('ZADD', key('nodes'), now, node)
for _, room in ipairs(redis.call('SMEMBERS', key('node', node, 'rooms'))) do
  redis.call('PEXPIRE', key('node', node, 'room', room), ttl)
  redis.call('PEXPIRE', key('room', room, 'nodes'), ttl)
end
redis.call('PEXPIRE', key('node', node, 'rooms'), ttl)
redis.call('PEXPIRE', key('node', node, 'users'), ttl)
redis.call('PEXPIRE', key('node', node, 'accounts'), ttl)
if previous == nil or previous < now - deadAfter then return 1 end
return 0
`)

/**
 * Buries the nodes silent for `deadAfter` (or, given `leaving`, that node now): presence keys deleted, live
 * sessions held until the last beat plus the resume window. Atomic, so each dead node is buried once.
 */
const BURY = script(
  APPLY_HELD_STATE +
    `
local deadAfter, window, backstop, leaving = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local now = nowMs()
local function bury(node, lastBeat)
  for _, room in ipairs(redis.call('SMEMBERS', key('node', node, 'rooms'))) do
    redis.call('DEL', key('node', node, 'room', room))
    redis.call('SREM', key('room', room, 'nodes'), node)
  end
  redis.call('DEL', key('node', node, 'rooms'), key('node', node, 'users'), key('node', node, 'accounts'))
  local heldUntil = lastBeat + window
  for _, session in ipairs(redis.call('SMEMBERS', key('node', node, 'sessions'))) do
    local state = redis.call('HMGET', key('session', session), 'node', 'heldUntil')
    if state[1] == node and not state[2] then
      applyHeldState(session, node, string.format('%d', heldUntil), heldUntil - now + backstop)
    end
  end
  redis.call('DEL', key('node', node, 'sessions'))
  redis.call('ZREM', key('nodes'), node)
end
local buried = {}
if leaving ~= '' then
  bury(leaving, now)
  table.insert(buried, leaving)
else
  local cutoff = string.format('(%d', now - deadAfter)
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', key('nodes'), '-inf', cutoff)) do
    bury(node, tonumber(redis.call('ZSCORE', key('nodes'), node)))
    table.insert(buried, node)
  end
end
return buried
`
)

/** A held record outlives its window by this much if no node is left to expire it (then it simply vanishes). */
export const BACKSTOP_MS = 60 * 60 * 1000

const make = (options: RedisNodesOptions) =>
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const node = yield* NodeId
    const deadAfterMs = Duration.toMillis(options.deadAfter)
    const nodeKeyTtlMs = 3 * deadAfterMs
    const windowMs = Duration.toMillis(options.resumeWindow)
    const restores: Array<Effect.Effect<void, BackendError>> = []
    const forgetters = new Set<(session: string) => void>()
    let restorePending = true
    /** When the connection last came back: a node fresh from an outage must not bury peers that are, too. */
    let connectedAt = Date.now()

    const bury = (leaving: string) => redis.eval("bury", BURY, [deadAfterMs, windowMs, BACKSTOP_MS, leaving])

    const round = Effect.gen(function* () {
      const stale = yield* redis.eval("heartbeat", BEAT, [node, deadAfterMs, nodeKeyTtlMs])
      if (stale === 1) restorePending = true
      if (restorePending) {
        for (const restore of restores) yield* restore
        restorePending = false
      }
      if (Date.now() - connectedAt >= deadAfterMs) yield* bury("")
    })

    // A node that stops cleanly leaves at once instead of being found dead later. Added before the loops are
    // forked, so it runs after they are stopped and no beat can bring the node back.
    yield* Effect.addFinalizer(() => bury(node).pipe(Effect.timeout(Duration.seconds(1)), Effect.ignore))

    const wake = yield* Queue.sliding<void>(1)
    const readyAgain = yield* redis.readyAgain
    yield* Queue.take(readyAgain).pipe(
      Effect.flatMap(() =>
        Effect.sync(() => {
          restorePending = true
          connectedAt = Date.now()
        })
      ),
      Effect.zipRight(Queue.offer(wake, undefined)),
      Effect.forever,
      Effect.forkScoped
    )

    yield* round.pipe(
      // Failures while Redis is away are expected; the client has logged the outage once.
      Effect.catchAll((error) => Effect.logDebug("heartbeat failed", error.message)),
      Effect.zipRight(Effect.raceFirst(Effect.sleep(options.heartbeat), Queue.take(wake))),
      Effect.forever,
      Effect.forkScoped
    )

    return RedisNodes.of({
      node,
      deadAfterMs,
      resumeWindowMs: windowMs,
      nodeKeyTtlMs,
      onRestore: (restore) =>
        Effect.acquireRelease(
          Effect.sync(() => restores.push(restore)),
          () => Effect.sync(() => restores.splice(restores.indexOf(restore), 1))
        ),
      takenOver: (session) => {
        for (const forget of forgetters) forget(session)
      },
      onTakenOver: (forget) =>
        Effect.acquireRelease(
          Effect.sync(() => forgetters.add(forget)),
          () => Effect.sync(() => forgetters.delete(forget))
        )
    })
  })
