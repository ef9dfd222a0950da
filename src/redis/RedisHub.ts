/**
 * The hub over Redis. One script numbers a message (`room:R:seq`), appends it to the room's log (a stream whose
 * entry ids are the message ids) and publishes it on the room's channel, so the channel carries every room's
 * messages in id order to every node. Presence events travel on the same channel, unnumbered.
 *
 * A room's keys expire `roomTtl` after its last message, unless a node still has it open: nodes refresh the rooms
 * they subscribe to, so nobody can grow Redis without bound by touching rooms, and a room in use keeps its ids.
 * Channel messages missed while the pub/sub connection was away are read back from the log once it is back.
 */
import { Duration, Effect, Either, Layer, Queue, Schedule } from "effect"
import { BackendError } from "../backend/BackendError.js"
import {
  ChangeRefused,
  type DirectEnvelope,
  Hub,
  type HubService,
  type LoggedChange,
  type RoomEvent,
  type RoomSink
} from "../backend/Hub.js"
import * as MessageState from "../backend/MessageState.js"
import type * as Protocol from "../protocol/Protocol.js"
import { UNREAD_CAP } from "../protocol/Rules.js"
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
-- A message's changes live as long as the message does.
for _, part in ipairs({'state', 'rev', 'changes', 'deleted'}) do redis.call('PEXPIRE', key('room', room, part), ttl) end
-- Every 100th message, what the log no longer holds goes from the state of changed messages and the deleted ids.
if tonumber(entry) % 100 == 0 then
  local first = redis.call('XRANGE', logKey, '-', '+', 'COUNT', 1)[1]
  if first then
    local oldest = tonumber(string.match(first[1], '^%d+'))
    local stateKey = key('room', room, 'state')
    for _, field in ipairs(redis.call('HKEYS', stateKey)) do
      if tonumber(field) < oldest then redis.call('HDEL', stateKey, field) end
    end
    redis.call('ZREMRANGEBYSCORE', key('room', room, 'deleted'), '-inf', '(' .. oldest)
  end
end
redis.call('ZADD', key('rooms'), at, room)
redis.call('PUBLISH', key('room', room, 'events'), 'M' .. entry .. ' ' .. body)
return tonumber(entry)
`)

/**
 * `ARGV`: room, id, expected state ('' for none), new state, deleted (0/1), change frame, ttl, changes kept. Applies
 * a change computed from the state read before (`MessageState.apply`) only if that state is still the current one
 * (-1 otherwise: read again and retry), numbers it, logs it and publishes it on the room's channel.
 */
const CHANGE = script(`
local room, id, expected, state, deleted, frame, ttl, kept = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local stateKey = key('room', room, 'state')
if (redis.call('HGET', stateKey, id) or '') ~= expected then return -1 end
redis.call('HSET', stateKey, id, state)
local rev = redis.call('INCR', key('room', room, 'rev'))
local changesKey = key('room', room, 'changes')
redis.call('XADD', changesKey, 'MAXLEN', '~', kept, rev .. '-0', 'c', frame, 'i', id)
if deleted == '1' then redis.call('ZADD', key('room', room, 'deleted'), id, id) end
for _, k in ipairs({stateKey, key('room', room, 'rev'), changesKey, key('room', room, 'deleted')}) do
  redis.call('PEXPIRE', k, ttl)
end
redis.call('PUBLISH', key('room', room, 'events'), 'C' .. rev .. ' ' .. frame)
return rev
`)

/** Lua: the unread count after `last` in `room`: retained ids after it, less the deleted ones, capped. */
const COUNT_UNREAD = `
local function countUnread(room, last, cap, through)
  local latest = tonumber(redis.call('GET', key('room', room, 'seq')) or '0')
  if through >= 0 then latest = math.min(latest, through) end
  local first = redis.call('XRANGE', key('room', room, 'log'), '-', '+', 'COUNT', 1)[1]
  local oldest = first and tonumber(string.match(first[1], '^%d+')) or (latest + 1)
  local from = math.max(last + 1, oldest)
  if from > latest then return 0 end
  local deleted = redis.call('ZCOUNT', key('room', room, 'deleted'), from, latest)
  return math.min(cap, latest - from + 1 - deleted)
end
`

/**
 * `ARGV`: room, user key, id, cap. Moves the marker forward (never past the latest id):
 * `[last_read, count, moved, latest]`.
 */
const READ = script(
  COUNT_UNREAD +
    `
local room, user, id, cap, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local readKey = key('read', user)
local before = tonumber(redis.call('HGET', readKey, room) or '0')
local latest = tonumber(redis.call('GET', key('room', room, 'seq')) or '0')
local target = math.min(id, latest)
local moved = 0
if target > before then
  redis.call('HSET', readKey, room, target)
  moved = 1
  before = target
end
-- A user's markers stay while the user keeps reading; a guest's (a session key) go some time after it does.
redis.call('PEXPIRE', readKey, ttl)
return {before, countUnread(room, before, cap, latest), moved, latest}
`
)

/** `ARGV`: room, user key, cap, through (-1: every id): `[last_read, count]`. */
const UNREAD = script(
  COUNT_UNREAD +
    `
local room, user, cap, through = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local last = tonumber(redis.call('HGET', key('read', user), room) or '0')
return {last, countUnread(room, last, cap, through)}
`
)

/** How long a user's read markers outlive their last `read` (30 days). */
const READ_MARKER_TTL_MS = 30 * 24 * 3600 * 1000

/** Changes each room's log keeps for resumes (approximately: trimmed with `~`). */
const CHANGES_KEPT = 1000
/** Attempts at a change whose message another node changed between the read and the write. */
const CHANGE_ATTEMPTS = 8

/** `ARGV`: ttl, now, then (room, floor) pairs: keeps open rooms alive and their sequence at least at `floor`. */
const KEEP_ALIVE = script(`
local ttl, now = ARGV[2], tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local room, floor = ARGV[i], ARGV[i + 1]
  local seqKey = key('room', room, 'seq')
  if tonumber(floor) > (tonumber(redis.call('GET', seqKey)) or 0) then redis.call('SET', seqKey, floor) end
  redis.call('PEXPIRE', seqKey, ttl)
  redis.call('PEXPIRE', key('room', room, 'log'), ttl)
  for _, part in ipairs({'state', 'rev', 'changes', 'deleted'}) do redis.call('PEXPIRE', key('room', room, part), ttl) end
  redis.call('ZADD', key('rooms'), ARGV[3], room)
end
redis.call('ZREMRANGEBYSCORE', key('rooms'), '-inf', string.format('(%d', now - tonumber(ttl)))
`)

interface Feed {
  readonly room: string
  readonly sink: RoomSink
  /** Highest message id put on this feed, or the room's last id when it started. */
  last: number
  /** Highest change rev put on this feed. */
  lastRev: number
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
      if (event._tag === "Change" && event.rev > feed.lastRev) feed.lastRev = event.rev
      feed.sink(event)
    }

    const publish: HubService["publish"] = (room, post) =>
      Effect.suspend(() => {
        const at = Date.now()
        const fields: Body = {
          from: post.from,
          text: post.text,
          at,
          ...(post.author === undefined ? {} : { author: post.author }),
          ...(post.replyTo === undefined ? {} : { reply_to: post.replyTo })
        }
        const body = JSON.stringify(fields)
        return redis
          .eval("publish", PUBLISH, [room, body, config.historyRetain, ttlMs, floorOf(room), at])
          .pipe(Effect.map((id) => toMessage(room, Number(id), fields)))
      })

    const announce: HubService["announce"] = (room, event) =>
      redis.command("announce", ["PUBLISH", keys.roomChannel(room), `E${JSON.stringify(event)}`]).pipe(Effect.asVoid)

    const latest = (room: string) => redis.command("latest", ["GET", keys.roomSeq(room)]).pipe(Effect.map(toNumber))
    const latestRev = (room: string) =>
      redis.command("latestRev", ["GET", keys.roomRev(room)]).pipe(Effect.map(toNumber))

    /** The current state of messages that changed since they were published, by id. */
    const statesOf = (room: string, ids: ReadonlyArray<number>) =>
      ids.length === 0
        ? Effect.succeed([] as ReadonlyArray<string | null>)
        : redis
            .command("states", ["HMGET", keys.roomState(room), ...ids.map(String)])
            .pipe(Effect.map((reply) => (Array.isArray(reply) ? (reply as Array<string | null>) : [])))

    /** Messages with their current state: published bodies overlaid with what changed. */
    const withStates = (room: string, entries: ReadonlyArray<Entry>) =>
      Effect.map(
        statesOf(
          room,
          entries.map((entry) => entry.frame.id)
        ),
        (states) => entries.map((entry, i) => overlay(entry, states[i] ?? null))
      )

    const change: HubService["change"] = (room, request) => {
      const attempt: Effect.Effect<
        Either.Either<LoggedChange | undefined, MessageState.ChangeRefusal> | "retry",
        BackendError
      > = Effect.gen(function* () {
        const [entries, states] = yield* Effect.all(
          [
            redis
              .command("change", ["XRANGE", keys.roomLog(room), `${request.id}-0`, `${request.id}-0`])
              .pipe(Effect.map((reply) => decodeEntries(room, reply))),
            statesOf(room, [request.id])
          ],
          { concurrency: "unbounded" }
        )
        const entry = entries[0]
        const expected = states[0] ?? null
        const stored = entry === undefined ? undefined : overlay(entry, expected)
        const applied = MessageState.apply(stored, request, Date.now())
        if (Either.isLeft(applied) || applied.right === undefined)
          return applied as Either.Either<undefined, MessageState.ChangeRefusal>
        const { change: frame, message } = applied.right
        const state: StoredState = {
          text: message.frame.text,
          ...(message.frame.edited === undefined ? {} : { edited: message.frame.edited }),
          ...(message.frame.deleted === true ? { deleted: true } : {}),
          ...(message.reactors === undefined ? {} : { reactors: message.reactors })
        }
        const body = JSON.stringify(frame)
        const rev = toNumber(
          yield* redis.eval("change", CHANGE, [
            room,
            request.id,
            expected ?? "",
            JSON.stringify(state),
            message.frame.deleted === true ? 1 : 0,
            body,
            ttlMs,
            CHANGES_KEPT
          ])
        )
        if (rev < 0) return "retry" as const
        return Either.right({ rev, frame })
      })
      const loop = (left: number): Effect.Effect<LoggedChange | undefined, ChangeRefused | BackendError> =>
        Effect.flatMap(attempt, (outcome) =>
          outcome === "retry"
            ? left > 1
              ? loop(left - 1)
              : Effect.fail(new BackendError({ reason: "Unavailable", operation: "change" }))
            : Either.isLeft(outcome)
              ? Effect.fail(new ChangeRefused({ reason: outcome.left }))
              : Effect.succeed(outcome.right)
        )
      return loop(CHANGE_ATTEMPTS)
    }

    const changes: HubService["changes"] = (room, query) => {
      const start = exclusiveAfter(query.afterRev)
      if (start === undefined || query.throughRev <= query.afterRev) return Effect.succeed([])
      return redis
        .command("changes", ["XRANGE", keys.roomChanges(room), start, `${Math.floor(query.throughRev)}-0`])
        .pipe(
          Effect.map((reply) =>
            MessageState.collapse(decodeChanges(reply).filter((logged) => logged.frame.id <= query.throughId))
          )
        )
    }

    const markRead: HubService["markRead"] = (room, user, id) =>
      redis.eval("read", READ, [room, user, id, UNREAD_CAP, READ_MARKER_TTL_MS]).pipe(
        Effect.map((reply) => {
          const [last, count, moved, latest] = Array.isArray(reply) ? reply.map(toNumber) : [0, 0, 0, 0]
          return {
            unread: { type: "unread" as const, room, last_read: last ?? 0, count: count ?? 0 },
            moved: moved === 1,
            through: latest ?? 0
          }
        })
      )

    const unread: HubService["unread"] = (room, user, through) =>
      redis.eval("unread", UNREAD, [room, user, UNREAD_CAP, through === undefined ? -1 : Math.floor(through)]).pipe(
        Effect.map((reply) => {
          const [last, count] = Array.isArray(reply) ? reply.map(toNumber) : [0, 0]
          return { type: "unread" as const, room, last_read: last ?? 0, count: count ?? 0 }
        })
      )

    const oldest = (room: string) =>
      redis
        .command("oldest", ["XRANGE", keys.roomLog(room), "-", "+", "COUNT", 1])
        .pipe(Effect.map((reply) => decodeEntries(room, reply)[0]?.frame.id ?? 0))

    const subscribe: HubService["subscribe"] = (room, sink) =>
      Effect.gen(function* () {
        const feed: Feed = { room, sink, last: 0, lastRev: 0 }
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
        const [lastId, lastRev] = yield* Effect.all([latest(room), latestRev(room)], { concurrency: "unbounded" })
        feed.last = Math.max(feed.last, lastId)
        feed.lastRev = Math.max(feed.lastRev, lastRev)
        return { lastId, lastRev }
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
        const entries = decodeEntries(room, reply)
        if (!query.oldestFirst) entries.reverse()
        const messages = (yield* withStates(room, entries)).map((message) => message.frame)
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
          return page.messages.length < CATCH_UP_PAGE ? catchUpChanges(feed) : catchUp(feed)
        })
      )

    /** Changes missed while the channel was away, after the messages (a change never precedes its message). */
    const catchUpChanges = (feed: Feed) =>
      Effect.flatMap(latestRev(feed.room), (rev) =>
        rev <= feed.lastRev
          ? Effect.void
          : Effect.map(
              changes(feed.room, { afterRev: feed.lastRev, throughRev: rev, throughId: Number.MAX_SAFE_INTEGER }),
              (missed) => {
                for (const logged of missed) put(feed, { _tag: "Change", frame: logged.frame, rev: logged.rev })
              }
            )
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

    return Hub.of({
      publish,
      announce,
      change,
      changes,
      markRead,
      unread,
      subscribe,
      history,
      bounds,
      direct,
      subscribeDirect,
      roomCount
    })
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
  readonly author?: string
  readonly reply_to?: number
}

/** What changed about a message since it was published (`room:R:state`). */
interface StoredState {
  readonly text: string
  readonly edited?: number
  readonly deleted?: boolean
  readonly reactors?: Readonly<Record<string, ReadonlyArray<MessageState.Reactor>>>
}

/** A log entry: the message as published and who may change it. */
interface Entry {
  readonly frame: Protocol.Message
  readonly author: string | undefined
}

const toMessage = (room: string, id: number, body: Body): Protocol.Message =>
  body.reply_to === undefined
    ? { type: "message", room, id, from: body.from, text: body.text, at: body.at }
    : { type: "message", room, id, from: body.from, text: body.text, at: body.at, reply_to: body.reply_to }

/** The message as it is now: its published entry with its changed state, if any, laid over it. */
const overlay = (entry: Entry, stateText: string | null): MessageState.StoredMessage => {
  const state = stateText === null ? undefined : (parseJson(stateText) as StoredState | undefined)
  if (state === undefined) return { frame: entry.frame, author: entry.author }
  const frame: { -readonly [K in keyof Protocol.Message]: Protocol.Message[K] } = { ...entry.frame, text: state.text }
  if (state.edited !== undefined) frame.edited = state.edited
  if (state.deleted === true) frame.deleted = true
  const reactions = MessageState.namesOf(state.reactors)
  if (reactions !== undefined) frame.reactions = reactions
  return { frame, author: entry.author, reactors: state.reactors }
}

/** XRANGE reply of a changes stream: `[[rev-0, ['c', frame, 'i', id]], ...]`. */
const decodeChanges = (reply: unknown): Array<LoggedChange> => {
  const changes: Array<LoggedChange> = []
  if (!Array.isArray(reply)) return changes
  for (const entry of reply) {
    const [id, fields] = entry as [string, Array<string>]
    const frame = parseJson(fields[fields.indexOf("c") + 1] ?? "") as Protocol.Change | undefined
    if (frame !== undefined) changes.push({ rev: parseInt(id, 10), frame })
  }
  return changes
}

/** A channel payload: `M<id> <body>` for a message, `C<rev> <frame>` for a change, `E<event>` for the others. */
const decodeEvent = (room: string, payload: string): RoomEvent | undefined => {
  if (payload.startsWith("M")) {
    const space = payload.indexOf(" ")
    const body = parseJson(payload.slice(space + 1)) as Body | undefined
    if (body === undefined) return undefined
    return { _tag: "Message", frame: toMessage(room, Number(payload.slice(1, space)), body) }
  }
  if (payload.startsWith("C")) {
    const space = payload.indexOf(" ")
    const frame = parseJson(payload.slice(space + 1)) as Protocol.Change | undefined
    if (frame === undefined) return undefined
    return { _tag: "Change", frame, rev: Number(payload.slice(1, space)) }
  }
  return payload.startsWith("E") ? (parseJson(payload.slice(1)) as RoomEvent | undefined) : undefined
}

/** XRANGE/XREVRANGE reply: `[[id, [field, value, ...]], ...]`, the body in field `m`. */
const decodeEntries = (room: string, reply: unknown): Array<Entry> => {
  const entries: Array<Entry> = []
  if (!Array.isArray(reply)) return entries
  for (const entry of reply) {
    const [id, fields] = entry as [string, Array<string>]
    const body = parseJson(fields[fields.indexOf("m") + 1] ?? "") as Body | undefined
    if (body !== undefined) entries.push({ frame: toMessage(room, parseInt(id, 10), body), author: body.author })
  }
  return entries
}
