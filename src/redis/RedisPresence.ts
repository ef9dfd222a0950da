/**
 * Presence over Redis, cluster-wide. Each node writes only its own keys — who is online on it, and its members of
 * each room — and readers add up the nodes whose heartbeat is recent, so a node that dies takes its users and
 * members with it as soon as it is found silent, before anyone has cleaned up.
 *
 * The node also keeps what it wrote in memory: when Redis lost it, or missed a write during an outage, the node
 * writes it all back (`onRestore`), and re-asserts the names of its online users.
 */
import { Effect, Layer } from "effect"
import { Presence, type PresenceService, sortNames } from "../backend/Presence.js"
import { nameKey } from "../protocol/Protocol.js"
import { RedisClient } from "./RedisClient.js"
import { CLAIM_NAME, script } from "./RedisKeys.js"
import { RedisNodes } from "./RedisNodes.js"

/** `ARGV`: node, session, name, ttl. A session coming here from another node (a resume) stops counting there. */
const ONLINE = script(`
local node, session, name, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
for _, other in ipairs(redis.call('ZRANGE', key('nodes'), 0, -1)) do
  if other ~= node then redis.call('HDEL', key('node', other, 'users'), session) end
end
redis.call('HSET', key('node', node, 'users'), session, name)
redis.call('PEXPIRE', key('node', node, 'users'), ttl)
`)

/** `ARGV`: deadAfter. Sessions online on live nodes. */
const USERS = script(`
local cutoff = nowMs() - tonumber(ARGV[2])
local total = 0
for _, node in ipairs(redis.call('ZRANGEBYSCORE', key('nodes'), cutoff, '+inf')) do
  total = total + redis.call('HLEN', key('node', node, 'users'))
end
return total
`)

/** `ARGV`: node, room, session, name, ttl. */
const JOIN = script(`
local node, room, session, name, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local members, rooms, nodes = key('node', node, 'room', room), key('node', node, 'rooms'), key('room', room, 'nodes')
redis.call('HSET', members, session, name)
redis.call('SADD', rooms, room)
redis.call('SADD', nodes, node)
for _, k in ipairs({ members, rooms, nodes }) do redis.call('PEXPIRE', k, ttl) end
`)

/** `ARGV`: node, room, session. */
const LEAVE = script(`
local node, room, session = ARGV[2], ARGV[3], ARGV[4]
local members = key('node', node, 'room', room)
redis.call('HDEL', members, session)
if redis.call('EXISTS', members) == 0 then
  redis.call('SREM', key('node', node, 'rooms'), room)
  redis.call('SREM', key('room', room, 'nodes'), node)
end
`)

/** `ARGV`: node, session, name, rooms... */
const RENAME = script(`
local node, session, name = ARGV[2], ARGV[3], ARGV[4]
local hashes = { key('node', node, 'users') }
for i = 5, #ARGV do table.insert(hashes, key('node', node, 'room', ARGV[i])) end
for _, hash in ipairs(hashes) do
  if redis.call('HEXISTS', hash, session) == 1 then redis.call('HSET', hash, session, name) end
end
`)

/** `ARGV`: room, deadAfter. Names of the room's members on live nodes, one per session. */
const MEMBERS = script(`
local room, cutoff = ARGV[2], nowMs() - tonumber(ARGV[3])
local names, seen = {}, {}
for _, node in ipairs(redis.call('SMEMBERS', key('room', room, 'nodes'))) do
  local beat = tonumber(redis.call('ZSCORE', key('nodes'), node))
  if beat and beat >= cutoff then
    local entries = redis.call('HGETALL', key('node', node, 'room', room))
    for i = 1, #entries, 2 do
      if not seen[entries[i]] then
        seen[entries[i]] = true
        table.insert(names, entries[i + 1])
      end
    end
  end
end
return names
`)

/**
 * `ARGV`: node, ttl, users as JSON `[[session, name, nameKey]]`, rooms as JSON `[[room, [[session, name]]]]`.
 * Replaces everything this node has in Redis with what it knows, except sessions another node has taken over
 * (their record says where they live now); returns those.
 */
const RESTORE = script(
  CLAIM_NAME +
    `
local node, ttl = ARGV[2], ARGV[3]
local users, rooms = cjson.decode(ARGV[4]), cjson.decode(ARGV[5])
for _, room in ipairs(redis.call('SMEMBERS', key('node', node, 'rooms'))) do
  redis.call('DEL', key('node', node, 'room', room))
  redis.call('SREM', key('room', room, 'nodes'), node)
end
redis.call('DEL', key('node', node, 'rooms'), key('node', node, 'users'))
local moved = {}
for _, user in ipairs(users) do
  local holder = redis.call('HGET', key('session', user[1]), 'node')
  if holder and holder ~= node then
    table.insert(moved, user[1])
  else
    redis.call('HSET', key('node', node, 'users'), user[1], user[2])
    claimName(user[3], user[1], node, user[2])
  end
end
redis.call('PEXPIRE', key('node', node, 'users'), ttl)
for _, entry in ipairs(rooms) do
  local room, members = entry[1], key('node', node, 'room', entry[1])
  for _, member in ipairs(entry[2]) do redis.call('HSET', members, member[1], member[2]) end
  redis.call('SADD', key('node', node, 'rooms'), room)
  redis.call('SADD', key('room', room, 'nodes'), node)
  redis.call('PEXPIRE', members, ttl)
  redis.call('PEXPIRE', key('room', room, 'nodes'), ttl)
end
redis.call('PEXPIRE', key('node', node, 'rooms'), ttl)
return moved
`
)

export const layer = Layer.scoped(
  Presence,
  Effect.suspend(() => make)
)

const make = Effect.gen(function* () {
  const redis = yield* RedisClient
  const nodes = yield* RedisNodes
  const { node, nodeKeyTtlMs: ttl, deadAfterMs } = nodes
  /** What this node has written: the truth about its own users, whatever Redis says after an outage. */
  const users = new Map<string, string>()
  const rooms = new Map<string, Map<string, string>>()

  const forgetMember = (room: string, session: string) => {
    const members = rooms.get(room)
    if (members !== undefined && members.delete(session) && members.size === 0) rooms.delete(room)
  }

  const restore = Effect.suspend(() => {
    const userList = Array.from(users, ([session, name]) => [session, name, nameKey(name)])
    const roomList = Array.from(rooms, ([room, members]) => [room, Array.from(members)])
    return redis.eval("restorePresence", RESTORE, [node, ttl, JSON.stringify(userList), JSON.stringify(roomList)])
  }).pipe(
    Effect.map((moved) => {
      // Taken over by a resume on another node, which does not tell this one's presence.
      if (Array.isArray(moved)) for (const session of moved) users.delete(String(session))
    })
  )
  yield* nodes.onRestore(restore)
  yield* nodes.onTakenOver((session) => {
    users.delete(session)
    for (const room of Array.from(rooms.keys())) forgetMember(room, session)
  })

  // A failed `online` or `join` is refused to the user, so it is undone here too; a failed `leave`, `offline` or
  // `rename` is not (the core goes on as if it had worked), so what this node knows is the intent, for a restore.
  const service: PresenceService = {
    online: (session, name) =>
      Effect.suspend(() => {
        users.set(session, name)
        return redis
          .eval("online", ONLINE, [node, session, name, ttl])
          .pipe(Effect.tapError(() => Effect.sync(() => users.delete(session))))
      }).pipe(Effect.asVoid),
    offline: (session) =>
      Effect.suspend(() => {
        users.delete(session)
        return redis.command("offline", ["HDEL", redis.keys.nodeUsers(node), session])
      }).pipe(Effect.asVoid),
    users: redis.eval("users", USERS, [deadAfterMs]).pipe(Effect.map(Number)),
    isOnline: (session, onNode) =>
      redis
        .command("isOnline", ["HEXISTS", redis.keys.nodeUsers(onNode), session])
        .pipe(Effect.map((n) => Number(n) === 1)),
    join: (room, session, name) =>
      Effect.suspend(() => {
        let members = rooms.get(room)
        if (members === undefined) rooms.set(room, (members = new Map()))
        members.set(session, name)
        return redis
          .eval("join", JOIN, [node, room, session, name, ttl])
          .pipe(Effect.tapError(() => Effect.sync(() => forgetMember(room, session))))
      }).pipe(Effect.asVoid),
    leave: (room, session) =>
      Effect.suspend(() => {
        forgetMember(room, session)
        return redis.eval("leave", LEAVE, [node, room, session])
      }).pipe(Effect.asVoid),
    rename: (session, names, name) =>
      Effect.suspend(() => {
        const roomList = Array.from(names)
        if (users.has(session)) users.set(session, name)
        for (const room of roomList) {
          const members = rooms.get(room)
          if (members?.has(session)) members.set(session, name)
        }
        return redis.eval("rename", RENAME, [node, session, name, ...roomList])
      }).pipe(Effect.asVoid),
    members: (room) =>
      redis
        .eval("members", MEMBERS, [room, deadAfterMs])
        .pipe(Effect.map((names) => sortNames(Array.isArray(names) ? names.map(String) : [])))
  }
  return Presence.of(service)
})
