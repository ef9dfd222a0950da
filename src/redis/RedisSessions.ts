/**
 * Resumable sessions over Redis, so a client can resume on any node. A session is a hash (`session:S`: name, rooms,
 * node, token, heldUntil) and its token a key naming it; `redeem` takes the token with GETDEL, so it works once.
 *
 * A held session sits in the `held` zset by the end of its window; `expire` takes the ended ones out in one
 * script, so exactly one node gets each and frees its name. A live session sits in its node's `node:N:sessions`
 * set: if that node dies, it is held from the node's last heartbeat (`redeem` says so at once; the node's burial
 * writes it down), so its client can resume elsewhere within the window and its name is freed after.
 */
import { Effect, Layer, Option } from "effect"
import {
  decodeRooms,
  encodeRooms,
  newToken,
  type SessionRecord,
  Sessions,
  type SessionsService
} from "../backend/Sessions.js"
import { RedisClient } from "./RedisClient.js"
import { APPLY_HELD_STATE, script } from "./RedisKeys.js"
import { BACKSTOP_MS, RedisNodes } from "./RedisNodes.js"

/** `ARGV`: session, token, name, rooms, node, heldUntil (0: live), backstop. The previous token stops working. */
const ISSUE = script(
  APPLY_HELD_STATE +
    `
local session, token, name, rooms, node, heldUntil, backstop = unpack(ARGV, 2, 8)
local sessionKey = key('session', session)
local previous = redis.call('HMGET', sessionKey, 'token', 'node')
if previous[1] then redis.call('DEL', key('token', previous[1])) end
if previous[2] and previous[2] ~= node then redis.call('SREM', key('node', previous[2], 'sessions'), session) end
redis.call('HSET', sessionKey, 'name', name, 'rooms', rooms, 'node', node, 'token', token)
redis.call('SET', key('token', token), session)
applyHeldState(session, node, heldUntil, backstop)
`
)

/** `ARGV`: session, name, rooms, node, heldUntil, backstop. Only the node holding the session may change it. */
const UPDATE = script(
  APPLY_HELD_STATE +
    `
local session, name, rooms, node, heldUntil, backstop = unpack(ARGV, 2, 7)
local sessionKey = key('session', session)
if redis.call('HGET', sessionKey, 'node') ~= node then return 0 end
redis.call('HSET', sessionKey, 'name', name, 'rooms', rooms)
applyHeldState(session, node, heldUntil, backstop)
return 1
`
)

/**
 * `ARGV`: token, deadAfter, window. Returns `[session, name, rooms, node, heldUntil]`; a live session of a node
 * silent for `deadAfter` is held from that node's last beat.
 */
const REDEEM = script(`
local token, deadAfter, window = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local session = redis.call('GETDEL', key('token', token))
if not session then return false end
local record = redis.call('HMGET', key('session', session), 'name', 'rooms', 'node', 'heldUntil')
if not record[3] then return false end
local heldUntil = record[4]
if not heldUntil then
  local beat = tonumber(redis.call('ZSCORE', key('nodes'), record[3]))
  if beat == nil then
    heldUntil = '0'
  elseif beat < nowMs() - deadAfter then
    heldUntil = string.format('%d', beat + window)
  end
end
return { session, record[1], record[2], record[3], heldUntil or '' }
`)

/** `ARGV`: session. */
const REMOVE = script(`
local session = ARGV[2]
local record = redis.call('HMGET', key('session', session), 'token', 'node')
if record[1] then redis.call('DEL', key('token', record[1])) end
if record[2] then redis.call('SREM', key('node', record[2], 'sessions'), session) end
redis.call('DEL', key('session', session))
redis.call('ZREM', key('held'), session)
`)

/** `ARGV`: now, limit. Removes and returns held sessions whose window ended before `now`. */
const EXPIRE = script(`
local expired = {}
for _, session in ipairs(redis.call('ZRANGEBYSCORE', key('held'), '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[3])) do
  local sessionKey = key('session', session)
  local record = redis.call('HMGET', sessionKey, 'name', 'rooms', 'node', 'heldUntil', 'token')
  if record[5] then redis.call('DEL', key('token', record[5])) end
  redis.call('DEL', sessionKey)
  redis.call('ZREM', key('held'), session)
  if record[1] then table.insert(expired, { session, record[1], record[2], record[3], record[4] }) end
end
return expired
`)

/**
 * `ARGV`: node, now, window, backstop, live sessions as JSON `[[session, name, rooms, token]]`. Writes back the
 * records of sessions live on this node that Redis lost or holds; holds the node's sessions it no longer has (their
 * end never reached Redis). Returns the sessions another node has taken meanwhile.
 */
const RESTORE = script(
  APPLY_HELD_STATE +
    `
local node, now, window, backstop = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local live, moved = {}, {}
for _, record in ipairs(cjson.decode(ARGV[6])) do
  local session = record[1]
  local sessionKey = key('session', session)
  local owner = redis.call('HGET', sessionKey, 'node')
  if not owner then
    redis.call('HSET', sessionKey, 'name', record[2], 'rooms', record[3], 'node', node, 'token', record[4])
    redis.call('SET', key('token', record[4]), session, 'NX')
    owner = node
  end
  if owner == node then
    applyHeldState(session, node, '0', 0)
    live[session] = true
  else
    table.insert(moved, session)
  end
end
for _, session in ipairs(redis.call('SMEMBERS', key('node', node, 'sessions'))) do
  if not live[session] then
    if redis.call('HGET', key('session', session), 'node') == node then
      applyHeldState(session, node, string.format('%d', now + window), window + backstop)
    else
      redis.call('SREM', key('node', node, 'sessions'), session)
    end
  end
end
return moved
`
)

const EXPIRE_BATCH = 500

interface LiveSession {
  readonly record: SessionRecord
  readonly token: string
}

export const layer = Layer.scoped(
  Sessions,
  Effect.suspend(() => make)
)

const make = Effect.gen(function* () {
  const redis = yield* RedisClient
  const nodes = yield* RedisNodes
  const { deadAfterMs, node, resumeWindowMs: windowMs } = nodes
  /** Sessions live on this node, as it last wrote them: written back if Redis loses them. */
  const live = new Map<string, LiveSession>()

  const remember = (record: SessionRecord, token: string | undefined) => {
    if (record.heldUntil === undefined && record.node === node && token !== undefined) {
      live.set(record.session, { record, token })
    } else {
      live.delete(record.session)
    }
  }

  const forget = (session: string, token: string) => {
    if (live.get(session)?.token === token) live.delete(session)
  }

  const heldArgs = (record: SessionRecord) => {
    const heldUntil = record.heldUntil ?? 0
    return [heldUntil, heldUntil === 0 ? 0 : Math.max(1, heldUntil - Date.now()) + BACKSTOP_MS]
  }

  const restore = Effect.suspend(() => {
    const records = Array.from(live.values(), ({ record, token }) => [
      record.session,
      record.name,
      encodeRooms(record),
      token
    ])
    return redis.eval("restoreSessions", RESTORE, [node, Date.now(), windowMs, BACKSTOP_MS, JSON.stringify(records)])
  }).pipe(
    Effect.map((moved) => {
      if (Array.isArray(moved)) for (const session of moved) live.delete(String(session))
    })
  )
  yield* nodes.onRestore(restore)
  yield* nodes.onTakenOver((session) => live.delete(session))

  const service: SessionsService = {
    issue: (record) =>
      Effect.suspend(() => {
        const token = newToken()
        remember(record, token)
        return redis
          .eval("issue", ISSUE, [
            record.session,
            token,
            record.name,
            encodeRooms(record),
            record.node,
            ...heldArgs(record)
          ])
          .pipe(
            Effect.as(token),
            // The session does not open without its token; should Redis have it anyway, a restore holds it.
            Effect.tapError(() => Effect.sync(() => forget(record.session, token)))
          )
      }),
    update: (record) =>
      Effect.suspend(() => {
        remember(record, live.get(record.session)?.token)
        return redis.eval("update", UPDATE, [
          record.session,
          record.name,
          encodeRooms(record),
          record.node,
          ...heldArgs(record)
        ])
      }).pipe(Effect.asVoid),
    redeem: (token) =>
      redis.eval("redeem", REDEEM, [token, deadAfterMs, windowMs]).pipe(
        Effect.map((reply) => {
          const record = Array.isArray(reply) ? decodeRecord(reply) : undefined
          if (record === undefined || (record.heldUntil !== undefined && record.heldUntil < Date.now())) {
            return Option.none()
          }
          return Option.some(record)
        })
      ),
    remove: (session) =>
      Effect.suspend(() => {
        live.delete(session)
        return redis.eval("remove", REMOVE, [session])
      }).pipe(Effect.asVoid),
    expire: (now) =>
      redis.eval("expire", EXPIRE, [now, EXPIRE_BATCH]).pipe(
        Effect.map((reply) => {
          const records = Array.isArray(reply) ? reply.flatMap((r) => decodeRecord(r) ?? []) : []
          for (const record of records) live.delete(record.session)
          return records
        })
      )
  }
  return Sessions.of(service)
})

/** `[session, name, rooms (JSON), node, heldUntil ('' or missing while live)]`. */
const decodeRecord = (reply: unknown): SessionRecord | undefined => {
  if (!Array.isArray(reply)) return undefined
  const [session, name, rooms, node, heldUntil] = reply.map((field) => (field === null ? "" : String(field)))
  if (!session || !name || !node) return undefined
  // A record this code did not write reads as having no rooms.
  return { session, name, ...decodeRooms(rooms || "[]"), node, heldUntil: heldUntil ? Number(heldUntil) : undefined }
}
