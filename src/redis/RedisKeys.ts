/**
 * Where the Redis backends keep things: every key and channel name, in one place, under one prefix. Scripts build
 * the keys they touch from the same layout (the Lua prelude below), which ties the backends to a single Redis
 * server (or primary); Redis Cluster would need every key named in `KEYS`.
 *
 * | key | type | holds |
 * |---|---|---|
 * | `room:R:seq` | string | last message id of room R |
 * | `room:R:log` | stream | R's retained messages, entry id `<id>-0`, field `m` = {from,text,at,author?,reply_to?} |
 * | `room:R:state` | hash | id → JSON state of a message changed since it was published (text, edited, deleted, reactors) |
 * | `room:R:rev` | string | last change rev of room R |
 * | `room:R:changes` | stream | R's recent changes, entry id `<rev>-0`, field `c` = the change frame, `i` = message id |
 * | `room:R:deleted` | zset | ids of R's deleted messages (score = id), for unread counts |
 * | `read:K` | hash | room → last read id, for user key K |
 * | `room:R:nodes` | set | nodes with members in R |
 * | `rooms` | zset | rooms by last activity (for counting) |
 * | `nodes` | zset | nodes by last heartbeat (Redis time, ms) |
 * | `node:N:users` | hash | session → name, guest sessions online on node N |
 * | `node:N:accounts` | hash | `u:<sub>` → name, authenticated users with a connection on N (on several nodes at once) |
 * | `node:N:rooms` | set | rooms with members on N |
 * | `node:N:room:R` | hash | session or `u:<sub>` → name, N's members of R |
 * | `node:N:sessions` | set | sessions held live by N (turned into held ones if N dies) |
 * | `name:K` | hash | owner of the name with key K: session, node, name |
 * | `guests` | string | the `user<N>` counter |
 * | `session:S` | hash | resumable session S: name, rooms (JSON), node, token, heldUntil |
 * | `token:T` | string | session of resume token T |
 * | `held` | zset | held sessions by the end of their resume window |
 *
 * Channels: `room:R:events` (a room's messages and presence events) and `node:N:direct` (envelopes for node N).
 */
import * as Crypto from "node:crypto"

export const DEFAULT_PREFIX = "effect-chat:"

export interface Script {
  readonly source: string
  readonly sha: string
}

export const makeKeys = (prefix: string) => ({
  prefix,
  nodes: `${prefix}nodes`,
  rooms: `${prefix}rooms`,
  held: `${prefix}held`,
  guests: `${prefix}guests`,
  roomSeq: (room: string) => `${prefix}room:${room}:seq`,
  roomLog: (room: string) => `${prefix}room:${room}:log`,
  roomChannel: (room: string) => `${prefix}room:${room}:events`,
  roomState: (room: string) => `${prefix}room:${room}:state`,
  roomRev: (room: string) => `${prefix}room:${room}:rev`,
  roomChanges: (room: string) => `${prefix}room:${room}:changes`,
  nodeUsers: (node: string) => `${prefix}node:${node}:users`,
  nodeAccounts: (node: string) => `${prefix}node:${node}:accounts`,
  nodeChannel: (node: string) => `${prefix}node:${node}:direct`,
  name: (nameKey: string) => `${prefix}name:${nameKey}`,
  session: (session: string) => `${prefix}session:${session}`,
  token: (token: string) => `${prefix}token:${token}`
})

export type Keys = ReturnType<typeof makeKeys>

/**
 * Shared by every script: `ARGV[1]` is the key prefix, `key(...)` joins a key under it, `nowMs()` is Redis's clock
 * (one clock for every node's heartbeat, whatever the nodes' own clocks say).
 */
const PRELUDE = `
local P = ARGV[1]
local function key(...) return P .. table.concat({...}, ':') end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

/** A Lua script over the key layout; its arguments start at `ARGV[2]`. */
export const script = (body: string): Script => {
  const source = PRELUDE + body
  return { source, sha: Crypto.createHash("sha1").update(source).digest("hex") }
}

/** Lua function recording whether a session is held (`heldUntil` > 0) or live on `node`, on its hash and indexes. */
export const APPLY_HELD_STATE = `
local function applyHeldState(session, node, heldUntil, backstopMs)
  local sessionKey = key('session', session)
  local token = redis.call('HGET', sessionKey, 'token')
  if tonumber(heldUntil) == 0 then
    redis.call('HDEL', sessionKey, 'heldUntil')
    redis.call('ZREM', key('held'), session)
    redis.call('SADD', key('node', node, 'sessions'), session)
    redis.call('PERSIST', sessionKey)
    if token then redis.call('PERSIST', key('token', token)) end
  else
    redis.call('HSET', sessionKey, 'heldUntil', heldUntil)
    redis.call('ZADD', key('held'), heldUntil, session)
    redis.call('SREM', key('node', node, 'sessions'), session)
    -- A backstop: the record goes even if no node is left to expire it.
    redis.call('PEXPIRE', sessionKey, backstopMs)
    if token then redis.call('PEXPIRE', key('token', token), backstopMs) end
  end
end
`

/** Lua function taking a name for a session unless another session owns it; true when the session owns it after. */
export const CLAIM_NAME = `
local function claimName(nameKey, session, node, name)
  local nameHash = key('name', nameKey)
  local owner = redis.call('HGET', nameHash, 'session')
  if owner and owner ~= session then return false end
  redis.call('HSET', nameHash, 'session', session, 'node', node, 'name', name)
  return true
end
`
