/**
 * The hub over Redis. One script numbers a message (`room:R:seq`), appends it to the room's log (a stream whose
 * entry ids are the message ids) and publishes it on the room's channel, so the channel carries every room's
 * messages in id order to every node. Presence events travel on the same channel, unnumbered.
 *
 * A room's keys expire `roomTtl` after its last message, unless a node still has it open: nodes refresh the rooms
 * they subscribe to, so nobody can grow Redis without bound by touching rooms, and a room in use keeps its ids.
 * Channel messages missed while the pub/sub connection was away are read back from the log once it is back.
 */
import { Duration, Effect, Layer, Queue, Schedule } from "effect"
import { BackendError } from "../backend/BackendError.js"
import { type DirectEnvelope, Hub, type HubService, type RoomEvent, type RoomSink } from "../backend/Hub.js"
import type * as Protocol from "../protocol/Protocol.js"
import { RedisClient } from "./RedisClient.js"
import { script } from "./RedisKeys.js"
import { RedisNodes } from "./RedisNodes.js"
import { RedisPubSub } from "./RedisPubSub.js"

/** `ARGV`: room, body, retain, ttl, floor, at. Ids continue past `floor` and the log's newest entry, never restart. */
const PUBLISH = script(`
local room, body, retain, ttl, floor, at = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local seqKey, logKey = key('room', room, 'seq'), key('room', room, 'log')
local id = redis.call('INCR', seqKey)
local newest = redis.call('XREVRANGE', logKey, '+', '-', 'COUNT', 1)[1]
local lowest = math.max(floor, newest and tonumber(string.match(newest[1], '^%d+')) or 0) + 1
local entry = string.format('%d', math.max(id, lowest))
if id < lowest then redis.call('SET', seqKey, entry) end
redis.call('XADD', logKey, 'MAXLEN', '~', retain, entry .. '-0', 'm', body)
redis.call('PEXPIRE', seqKey, ttl)
redis.call('PEXPIRE', logKey, ttl)
redis.call('ZADD', key('rooms'), at, room)
redis.call('PUBLISH', key('room', room, 'events'), 'M' .. entry .. ' ' .. body)
return tonumber(entry)
`)

/** `ARGV`: ttl, now, then (room, floor) pairs: keeps open rooms alive and their sequence at least at `floor`. */
const KEEP_ALIVE = script(`
local ttl, now = ARGV[2], tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local room, floor = ARGV[i], ARGV[i + 1]
  local seqKey = key('room', room, 'seq')
  if tonumber(floor) > (tonumber(redis.call('GET', seqKey)) or 0) then redis.call('SET', seqKey, floor) end
  redis.call('PEXPIRE', seqKey, ttl)
  redis.call('PEXPIRE', key('room', room, 'log'), ttl)
  redis.call('ZADD', key('rooms'), ARGV[3], room)
end
redis.call('ZREMRANGEBYSCORE', key('rooms'), '-inf', string.format('(%d', now - tonumber(ttl)))
`)

interface Feed {
  readonly room: string
  readonly sink: RoomSink
  /** Highest message id put on this feed, or the room's last id when it started. */
  last: number
}

const KEEP_ALIVE_BATCH = 500
const CATCH_UP_PAGE = 500

export interface RedisHubOptions {
  /** Messages each room's log keeps (approximately: the stream is trimmed with `~`). */
  readonly historyRetain: number
  /** A room's keys expire this long after its last message, unless a node has it open. */
  readonly roomTtl: Duration.Duration
}

export const layer = (options: RedisHubOptions) => Layer.scoped(Hub, make(options))

const make = (config: RedisHubOptions) =>
  Effect.gen(function* () {
    const redis = yield* RedisClient
    const pubsub = yield* RedisPubSub
    const nodes = yield* RedisNodes
    const keys = redis.keys
    const ttlMs = Duration.toMillis(config.roomTtl)
    const feeds = new Map<string, Set<Feed>>()

    const floorOf = (room: string) => {
      let floor = 0
      for (const feed of feeds.get(room) ?? []) floor = Math.max(floor, feed.last)
      return floor
    }

    const put = (feed: Feed, event: RoomEvent) => {
      if (event._tag === "Message" && event.frame.id > feed.last) feed.last = event.frame.id
      feed.sink(event)
    }

    const publish: HubService["publish"] = (room, post) =>
      Effect.suspend(() => {
        const at = Date.now()
        const body = JSON.stringify({ from: post.from, text: post.text, at })
        return redis
          .eval("publish", PUBLISH, [room, body, config.historyRetain, ttlMs, floorOf(room), at])
          .pipe(Effect.map((id) => toMessage(room, Number(id), { from: post.from, text: post.text, at })))
      })

    const announce: HubService["announce"] = (room, event) =>
      redis.command("announce", ["PUBLISH", keys.roomChannel(room), `E${JSON.stringify(event)}`]).pipe(Effect.asVoid)

    const latest = (room: string) => redis.command("latest", ["GET", keys.roomSeq(room)]).pipe(Effect.map(toNumber))

    const oldest = (room: string) =>
      redis
        .command("oldest", ["XRANGE", keys.roomLog(room), "-", "+", "COUNT", 1])
        .pipe(Effect.map((reply) => decodeEntries(room, reply)[0]?.id ?? 0))

    const subscribe: HubService["subscribe"] = (room, sink) =>
      Effect.gen(function* () {
        const feed: Feed = { room, sink, last: 0 }
        yield* pubsub.subscribe(keys.roomChannel(room), (payload) => {
          const event = decodeEvent(room, payload)
          if (event !== undefined) put(feed, event)
        })
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            let set = feeds.get(room)
            if (set === undefined) feeds.set(room, (set = new Set()))
            set.add(feed)
          }),
          () =>
            Effect.sync(() => {
              const set = feeds.get(room)
              if (set?.delete(feed) && set.size === 0) feeds.delete(room)
            })
        )
        // Read only now that the subscription is confirmed: what the feed misses is at most this id, and history
        // has it; what both carry, the room actor drops by id.
        const lastId = yield* latest(room)
        feed.last = Math.max(feed.last, lastId)
        return { lastId }
      })

    const history: HubService["history"] = (room, query) =>
      Effect.gen(function* () {
        const limit = Math.floor(query.limit)
        const start = query.after === undefined ? "-" : exclusiveAfter(query.after)
        const end = query.before === undefined ? "+" : exclusiveBefore(query.before)
        if (!(limit > 0) || start === undefined || end === undefined) return { messages: [], more: false }
        const log = keys.roomLog(room)
        const [reply, first] = yield* Effect.all(
          [
            query.oldestFirst
              ? redis.command("history", ["XRANGE", log, start, end, "COUNT", limit])
              : redis.command("history", ["XREVRANGE", log, end, start, "COUNT", limit]),
            oldest(room)
          ],
          { concurrency: "unbounded" }
        )
        const messages = decodeEntries(room, reply)
        if (!query.oldestFirst) messages.reverse()
        const page = messages[0]
        return { messages, more: page !== undefined && first < page.id }
      })

    const bounds: HubService["bounds"] = (room) =>
      Effect.all({ oldest: oldest(room), latest: latest(room) }, { concurrency: "unbounded" })

    const direct: HubService["direct"] = (node, envelope) =>
      redis.command("direct", ["PUBLISH", keys.nodeChannel(node), JSON.stringify(envelope)]).pipe(
        // Nobody listening means the target's node is gone: say so rather than drop the message silently. A takeover
        // or eviction on a dead node has nothing to act on, so it needs no listener.
        Effect.filterOrFail(
          (receivers) => receivers !== 0 || envelope._tag !== "Direct",
          () => new BackendError({ reason: "Unavailable", operation: "direct" })
        ),
        Effect.asVoid
      )

    const subscribeDirect: HubService["subscribeDirect"] = (node) =>
      Effect.gen(function* () {
        const envelopes = yield* Effect.acquireRelease(Queue.unbounded<DirectEnvelope>(), Queue.shutdown)
        yield* pubsub.subscribeRetrying(keys.nodeChannel(node), (payload) => {
          const envelope = parseJson(payload) as DirectEnvelope | undefined
          if (envelope === undefined) return
          if (envelope._tag === "Takeover") nodes.takenOver(envelope.session)
          envelopes.unsafeOffer(envelope)
        })
        return envelopes
      })

    const roomCount = Effect.suspend(() =>
      redis.command("roomCount", ["ZCOUNT", keys.rooms, Date.now() - ttlMs, "+inf"]).pipe(
        Effect.map(toNumber),
        // Unknown while Redis is away; /healthz shows it as -1.
        Effect.orElseSucceed(() => -1)
      )
    )

    const keepAlive = Effect.suspend(() => {
      const pairs = Array.from(feeds.keys(), (room) => [room, floorOf(room)] as const)
      const batches: Array<Array<string | number>> = []
      for (let i = 0; i < pairs.length; i += KEEP_ALIVE_BATCH) batches.push(pairs.slice(i, i + KEEP_ALIVE_BATCH).flat())
      if (batches.length === 0) batches.push([])
      return Effect.forEach(batches, (batch) => redis.eval("keepAlive", KEEP_ALIVE, [ttlMs, Date.now(), ...batch]), {
        discard: true
      })
    })

    const catchUp = (feed: Feed): Effect.Effect<void, BackendError> =>
      history(feed.room, { after: feed.last, limit: CATCH_UP_PAGE, oldestFirst: true }).pipe(
        Effect.flatMap((page) => {
          for (const message of page.messages) put(feed, { _tag: "Message", frame: message })
          return page.messages.length < CATCH_UP_PAGE ? Effect.void : catchUp(feed)
        })
      )

    yield* nodes.onRestore(keepAlive)
    yield* keepAlive.pipe(
      Effect.catchAll((error) => Effect.logDebug("room keep-alive failed", error.message)),
      Effect.repeat(Schedule.spaced(refreshInterval(config.roomTtl))),
      Effect.forkScoped
    )
    const renewed = yield* pubsub.renewed
    yield* Queue.take(renewed).pipe(
      Effect.zipRight(
        Effect.suspend(() =>
          Effect.forEach(
            Array.from(feeds.values()).flatMap((set) => Array.from(set)),
            catchUp
          )
        ).pipe(
          // The command connection may come back a moment after the pub/sub one.
          Effect.retry(Schedule.spaced(Duration.millis(200)).pipe(Schedule.upTo(Duration.seconds(10)))),
          Effect.catchAll((error) => Effect.logWarning("catching up room feeds failed", error.message))
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )

    return Hub.of({ publish, announce, subscribe, history, bounds, direct, subscribeDirect, roomCount })
  })

/** Often enough that an open room never expires, rarely enough to cost nothing. */
const refreshInterval = (roomTtl: Duration.Duration) =>
  Duration.clamp(Duration.millis(Duration.toMillis(roomTtl) / 3), {
    minimum: Duration.seconds(1),
    maximum: Duration.seconds(30)
  })

/** Stream range bound for ids above `after` (message ids are `<id>-0`); undefined when nothing can match. */
const exclusiveAfter = (after: number): string | undefined =>
  Number.isNaN(after) || after >= Number.MAX_SAFE_INTEGER ? undefined : after < 1 ? "-" : `(${Math.floor(after)}-0`

/** Stream range bound for ids below `before`; undefined when nothing can match. */
const exclusiveBefore = (before: number): string | undefined =>
  Number.isNaN(before) || before <= 1 ? undefined : before > Number.MAX_SAFE_INTEGER ? "+" : `(${Math.ceil(before)}-0`

const toNumber = (reply: unknown): number => {
  const n = Number(reply ?? 0)
  return Number.isFinite(n) ? n : 0
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

interface Body {
  readonly from: string
  readonly text: string
  readonly at: number
}

const toMessage = (room: string, id: number, body: Body): Protocol.Message => ({
  type: "message",
  room,
  id,
  from: body.from,
  text: body.text,
  at: body.at
})

/** A channel payload: `M<id> <body>` for a message, `E<event>` for a presence event. */
const decodeEvent = (room: string, payload: string): RoomEvent | undefined => {
  if (payload.startsWith("M")) {
    const space = payload.indexOf(" ")
    const body = parseJson(payload.slice(space + 1)) as Body | undefined
    if (body === undefined) return undefined
    return { _tag: "Message", frame: toMessage(room, Number(payload.slice(1, space)), body) }
  }
  return payload.startsWith("E") ? (parseJson(payload.slice(1)) as RoomEvent | undefined) : undefined
}

/** XRANGE/XREVRANGE reply: `[[id, [field, value, ...]], ...]`, the body in field `m`. */
const decodeEntries = (room: string, reply: unknown): Array<Protocol.Message> => {
  const messages: Array<Protocol.Message> = []
  if (!Array.isArray(reply)) return messages
  for (const entry of reply) {
    const [id, fields] = entry as [string, Array<string>]
    const body = parseJson(fields[fields.indexOf("m") + 1] ?? "") as Body | undefined
    if (body !== undefined) messages.push(toMessage(room, parseInt(id, 10), body))
  }
  return messages
}
