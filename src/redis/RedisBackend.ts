/**
 * The chat server over Redis: N processes sharing one Redis behave as one server — rooms, ids, history, presence,
 * names, direct messages and resume span the cluster. Each `layer(url)` is one node with its own `NodeId`.
 *
 * The node starts whether or not Redis answers: `/readyz` says 503 until it does, requests that need Redis get an
 * `error` frame meanwhile, and everything resumes by itself when Redis is back, sockets untouched.
 */
import { Duration, Effect, Layer } from "effect"
import { NodeId } from "../Chat.js"
import { ChatServer } from "../ChatServer.js"
import type { ConnectionRegistry } from "../ConnectionRegistry.js"
import { Readiness } from "../HttpRoutes.js"
import type { ServerConfig } from "../ServerConfig.js"
import { RedisClient } from "./RedisClient.js"
import * as RedisHub from "./RedisHub.js"
import * as RedisNames from "./RedisNames.js"
import { RedisNodes } from "./RedisNodes.js"
import * as RedisPresence from "./RedisPresence.js"
import { RedisPubSub } from "./RedisPubSub.js"
import * as RedisSessions from "./RedisSessions.js"

export interface RedisBackendOptions {
  /** Prefix of every key and channel (default `effect-chat:`): several chat clusters can share one Redis. */
  readonly keyPrefix?: string
  /** How often a node beats (default 3 s) and how long a silent node lives on (default 10 s). */
  readonly heartbeat?: Duration.DurationInput
  readonly deadAfter?: Duration.DurationInput
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

/** Hub, Presence, Names, Sessions, Readiness and NodeId over the Redis at `url`. */
export const backends = (url: string, options: RedisBackendOptions = {}) => {
  const connections = RedisPubSub.layer.pipe(
    Layer.provideMerge(RedisClient.layer(url, options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }))
  )
  const nodes = RedisNodes.layer({
    ...(options.heartbeat === undefined ? {} : { heartbeat: Duration.decode(options.heartbeat) }),
    ...(options.deadAfter === undefined ? {} : { deadAfter: Duration.decode(options.deadAfter) })
  }).pipe(Layer.provideMerge(connections), Layer.provideMerge(NodeId.layer))
  return Layer.mergeAll(RedisHub.layer, RedisPresence.layer, RedisNames.layer, RedisSessions.layer, readiness).pipe(
    Layer.provideMerge(nodes)
  )
}

/** One node of a cluster: the chat core (as `ChatServer.layerMemory` composes it) over the Redis backends. */
export const layer = (
  url: string,
  options: RedisBackendOptions = {}
): Layer.Layer<ChatServer | ConnectionRegistry, never, ServerConfig> =>
  ChatServer.layer.pipe(Layer.provide(backends(url, options)))
