/**
 * The backends over Redis: N processes sharing one Redis behave as one server — rooms, ids, history, presence,
 * names, direct messages and resume span the cluster. `layer(options)` is one node's `Hub`, `Presence`, `Names`,
 * `Sessions`, `Readiness` and `NodeId`; the chat core goes on top of it (`ChatServer.layer`), as for any backend.
 *
 * The node starts whether or not Redis answers: `/readyz` says 503 until it does, requests that need Redis get an
 * `error` frame meanwhile, and everything resumes by itself when Redis is back, sockets untouched.
 */
import { Duration, Effect, Layer } from "effect"
import { NodeId } from "../backend/NodeId.js"
import { Readiness } from "../backend/Readiness.js"
import { RedisClient } from "./RedisClient.js"
import * as RedisHub from "./RedisHub.js"
import * as RedisNames from "./RedisNames.js"
import { defaults as nodeDefaults, RedisNodes } from "./RedisNodes.js"
import * as RedisPresence from "./RedisPresence.js"
import { RedisPubSub } from "./RedisPubSub.js"
import * as RedisSessions from "./RedisSessions.js"

export interface RedisBackendOptions {
  /** e.g. `redis://127.0.0.1:6379`; Redis 6.2 or newer, one server (not Redis Cluster). */
  readonly url: string
  /** Prefix of every key and channel (default `effect-chat:`): several chat clusters can share one Redis. */
  readonly keyPrefix?: string
  /** How often a node beats (default 3 s) and how long a silent node lives on (default 10 s). */
  readonly heartbeat?: Duration.DurationInput
  readonly deadAfter?: Duration.DurationInput
  /** Messages each room keeps (default 100). Every node of a cluster must use the same settings. */
  readonly historyRetain?: number
  /** A room's keys expire this long after its last message, unless a node has it open (default 10 minutes). */
  readonly roomTtl?: Duration.DurationInput
  /** How long a dropped session stays resumable (default 2 minutes). */
  readonly resumeWindow?: Duration.DurationInput
}

/** Ready when both connections are up and a PING comes back within 500 ms. */
const readiness = Layer.effect(
  Readiness,
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const pubsub = yield* RedisPubSub
    return Effect.map(redis.ping, (answered) => answered && pubsub.isReady())
  })
)

/**
 * One node of a cluster: every backend service (`Hub`, `Presence`, `Names`, `Sessions`, `Readiness`, `NodeId`) over
 * the Redis at `options.url`, and the connections under them.
 */
export const layer = (options: RedisBackendOptions) => {
  const connections = RedisPubSub.layer.pipe(
    Layer.provideMerge(
      RedisClient.layer(options.url, options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix })
    )
  )
  const nodes = RedisNodes.layer({
    heartbeat: Duration.decode(options.heartbeat ?? nodeDefaults.heartbeat),
    deadAfter: Duration.decode(options.deadAfter ?? nodeDefaults.deadAfter),
    resumeWindow: Duration.decode(options.resumeWindow ?? nodeDefaults.resumeWindow)
  }).pipe(Layer.provideMerge(connections), Layer.provideMerge(NodeId.layer))
  const hub = RedisHub.layer({
    historyRetain: options.historyRetain ?? 100,
    roomTtl: Duration.decode(options.roomTtl ?? Duration.minutes(10))
  })
  return Layer.mergeAll(hub, RedisPresence.layer, RedisNames.layer, RedisSessions.layer, readiness).pipe(
    Layer.provideMerge(nodes)
  )
}
