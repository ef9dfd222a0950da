/**
 * Presence over Redis, cluster-wide. Each node writes only its own keys — who is online on it, and its members of
 * each room — and readers add up the nodes whose heartbeat is recent, so a node that dies takes its users and
 * members with it as soon as it is found silent, before anyone has cleaned up.
 *
 * The node also keeps what it wrote in memory: when Redis lost it, or missed a write during an outage, the node
 * writes it all back (`onRestore`), and re-asserts the names of its online users.
 */
import { Effect, Layer } from "effect"
import { byMembers, KeyCounts, Presence, type PresenceService, type RoomCount, sortNames } from "../backend/Presence.js"
import { isUserKey } from "../backend/UserKey.js"
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

/** Lua: whether `field` is in the hash `suffix` of a live node other than `node` (a user's other connections). */
const ELSEWHERE = `
local function elsewhere(nodes, node, hashOf, field, cutoff)
  for _, other in ipairs(nodes) do
    if other ~= node then
      local beat = tonumber(redis.call('ZSCORE', key('nodes'), other))
      if beat and beat >= cutoff and redis.call('HEXISTS', hashOf(other), field) == 1 then return true end
    end
  end
  return false
end
local function accountsOf(n) return key('node', n, 'accounts') end
`

/**
 * `ARGV`: node, user key, name, ttl, deadAfter. This node's first connection of an authenticated user; returns 1
 * when the user has no connection on any other live node (its first anywhere).
 */
const ONLINE_ACCOUNT = script(
  ELSEWHERE +
    `
local node, user, name, ttl, cutoff = ARGV[2], ARGV[3], ARGV[4], ARGV[5], nowMs() - tonumber(ARGV[6])
local first = not elsewhere(redis.call('ZRANGE', key('nodes'), 0, -1), node, accountsOf, user, cutoff)
redis.call('HSET', key('node', node, 'accounts'), user, name)
redis.call('PEXPIRE', key('node', node, 'accounts'), ttl)
return first and 1 or 0
`
)

/** `ARGV`: node, user key, deadAfter. This node's last connection of a user is gone; 1 when it was the last anywhere. */
const OFFLINE_ACCOUNT = script(
  ELSEWHERE +
    `
local node, user, cutoff = ARGV[2], ARGV[3], nowMs() - tonumber(ARGV[4])
redis.call('HDEL', key('node', node, 'accounts'), user)
return elsewhere(redis.call('ZRANGE', key('nodes'), 0, -1), node, accountsOf, user, cutoff) and 0 or 1
`
)

/** `ARGV`: deadAfter. Users online on live nodes: guest sessions, plus each authenticated user once. */
const USERS = script(`
local cutoff = nowMs() - tonumber(ARGV[2])
local total, seen = 0, {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', key('nodes'), cutoff, '+inf')) do
  total = total + redis.call('HLEN', key('node', node, 'users'))
  for _, user in ipairs(redis.call('HKEYS', key('node', node, 'accounts'))) do
    if not seen[user] then
      seen[user] = true
      total = total + 1
    end
  end
end
return total
`)

/** `ARGV`: self, key, deadAfter. Live nodes other than `self` where the key (session or user) is online. */
const REMOTE_NODES = script(`
local self, k, cutoff = ARGV[2], ARGV[3], nowMs() - tonumber(ARGV[4])
local hash = string.sub(k, 1, 2) == 'u:' and 'accounts' or 'users'
local found = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', key('nodes'), cutoff, '+inf')) do
  if node ~= self and redis.call('HEXISTS', key('node', node, hash), k) == 1 then table.insert(found, node) end
end
return found
`)

/**
 * `ARGV`: node, room, key, name, ttl, deadAfter. Returns 1 when the key is in the room on no other live node: the
 * user's first connection in the room, the one that is announced.
 */
const JOIN = script(
  ELSEWHERE +
    `
local node, room, session, name, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local cutoff = nowMs() - tonumber(ARGV[7])
local members, rooms, nodes = key('node', node, 'room', room), key('node', node, 'rooms'), key('room', room, 'nodes')
local function membersOf(n) return key('node', n, 'room', room) end
local first = not elsewhere(redis.call('SMEMBERS', nodes), node, membersOf, session, cutoff)
redis.call('HSET', members, session, name)
redis.call('SADD', rooms, room)
redis.call('SADD', nodes, node)
for _, k in ipairs({ members, rooms, nodes }) do redis.call('PEXPIRE', k, ttl) end
return first and 1 or 0
`
)

/** `ARGV`: node, room, key, deadAfter. Returns 1 when the key is in the room on no other live node (announce it). */
const LEAVE = script(
  ELSEWHERE +
    `
local node, room, session, cutoff = ARGV[2], ARGV[3], ARGV[4], nowMs() - tonumber(ARGV[5])
local members = key('node', node, 'room', room)
local function membersOf(n) return key('node', n, 'room', room) end
redis.call('HDEL', members, session)
if redis.call('EXISTS', members) == 0 then
  redis.call('SREM', key('node', node, 'rooms'), room)
  redis.call('SREM', key('room', room, 'nodes'), node)
end
return elsewhere(redis.call('SMEMBERS', key('room', room, 'nodes')), node, membersOf, session, cutoff) and 0 or 1
`
)

/** `ARGV`: node, key, name, rooms... */
const RENAME = script(`
local node, session, name = ARGV[2], ARGV[3], ARGV[4]
local hashes = { key('node', node, 'users'), key('node', node, 'accounts') }
for i = 5, #ARGV do table.insert(hashes, key('node', node, 'room', ARGV[i])) end
for _, hash in ipairs(hashes) do
  if redis.call('HEXISTS', hash, session) == 1 then redis.call('HSET', hash, session, name) end
end
`)

/** `ARGV`: room, deadAfter. Names of the room's members on live nodes, one per session or user. */
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
 * `ARGV`: deadAfter. Every room with members on a live node and its member count, as a flat list `room, count, ...`.
 * A room on one node is counted by `HLEN`; only a room on several nodes reads its keys, to count a user with
 * connections on two nodes once. The caller sorts and cuts: the reply is two entries per room with members.
 */
const ROOMS = script(`
local cutoff = nowMs() - tonumber(ARGV[2])
local counts, first, seen, order = {}, {}, {}, {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', key('nodes'), cutoff, '+inf')) do
  for _, room in ipairs(redis.call('SMEMBERS', key('node', node, 'rooms'))) do
    local hash = key('node', node, 'room', room)
    if counts[room] == nil then
      counts[room] = redis.call('HLEN', hash)
      first[room] = hash
      table.insert(order, room)
    else
      if seen[room] == nil then
        seen[room] = {}
        for _, k in ipairs(redis.call('HKEYS', first[room])) do seen[room][k] = true end
      end
      for _, k in ipairs(redis.call('HKEYS', hash)) do
        if not seen[room][k] then
          seen[room][k] = true
          counts[room] = counts[room] + 1
        end
      end
    end
  end
end
local out = {}
for _, room in ipairs(order) do
  if counts[room] > 0 then
    table.insert(out, room)
    table.insert(out, counts[room])
  end
end
return out
`)

/**
 * `ARGV`: node, ttl, users as JSON `[[session or user key, name, nameKey]]`, rooms as JSON `[[room, [[session, name]]]]`.
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
redis.call('DEL', key('node', node, 'rooms'), key('node', node, 'users'), key('node', node, 'accounts'))
local moved = {}
for _, user in ipairs(users) do
  local holder = redis.call('HGET', key('session', user[1]), 'node')
  if string.sub(user[1], 1, 2) == 'u:' then
    redis.call('HSET', key('node', node, 'accounts'), user[1], user[2])
    claimName(user[3], user[1], node, user[2])
  elseif holder and holder ~= node then
    table.insert(moved, user[1])
  else
    redis.call('HSET', key('node', node, 'users'), user[1], user[2])
    claimName(user[3], user[1], node, user[2])
  end
end
redis.call('PEXPIRE', key('node', node, 'users'), ttl)
redis.call('PEXPIRE', key('node', node, 'accounts'), ttl)
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
  /** Connections per key on this node: only a user's first here and last here reach Redis. */
  const online = new KeyCounts()
  const inRoom = new Map<string, KeyCounts>()

  const forgetMember = (room: string, session: string) => {
    const members = rooms.get(room)
    if (members !== undefined && members.delete(session) && members.size === 0) rooms.delete(room)
  }
  const roomCounts = (room: string) => {
    let counts = inRoom.get(room)
    if (counts === undefined) inRoom.set(room, (counts = new KeyCounts()))
    return counts
  }
  const uncount = (room: string, key: string) => {
    const counts = inRoom.get(room)
    if (counts !== undefined && counts.remove(key) && counts.size === 0) inRoom.delete(room)
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
    online.remove(session)
    for (const room of Array.from(rooms.keys())) forgetMember(room, session)
    for (const room of Array.from(inRoom.keys())) uncount(room, session)
  })

  // A failed `online` or `join` is refused to the user, so it is undone here too; a failed `leave`, `offline` or
  // `rename` is not (the core goes on as if it had worked), so what this node knows is the intent, for a restore.
  const service: PresenceService = {
    online: (key, name) =>
      Effect.suspend(() => {
        const firstHere = online.add(key)
        if (isUserKey(key)) {
          if (!firstHere) return Effect.succeed(false)
          users.set(key, name)
          return redis.eval("onlineAccount", ONLINE_ACCOUNT, [node, key, name, ttl, deadAfterMs]).pipe(
            Effect.map((first) => Number(first) === 1),
            Effect.tapError(() => Effect.sync(() => (online.remove(key), users.delete(key))))
          )
        }
        users.set(key, name)
        return redis.eval("online", ONLINE, [node, key, name, ttl]).pipe(
          Effect.as(firstHere),
          Effect.tapError(() => Effect.sync(() => (online.remove(key), users.delete(key))))
        )
      }),
    offline: (key) =>
      Effect.suspend(() => {
        const lastHere = online.remove(key)
        if (isUserKey(key)) {
          if (!lastHere) return Effect.succeed(false)
          users.delete(key)
          return redis
            .eval("offlineAccount", OFFLINE_ACCOUNT, [node, key, deadAfterMs])
            .pipe(Effect.map((last) => Number(last) === 1))
        }
        users.delete(key)
        return redis.command("offline", ["HDEL", redis.keys.nodeUsers(node), key]).pipe(Effect.as(lastHere))
      }),
    users: redis.eval("users", USERS, [deadAfterMs]).pipe(Effect.map(Number)),
    remoteNodes: (key, self) =>
      redis
        .eval("remoteNodes", REMOTE_NODES, [self, key, deadAfterMs])
        .pipe(Effect.map((found) => (Array.isArray(found) ? found.map(String) : []))),
    join: (room, key, name) =>
      Effect.suspend(() => {
        const firstHere = roomCounts(room).add(key)
        if (isUserKey(key) && !firstHere) return Effect.succeed(false)
        let members = rooms.get(room)
        if (members === undefined) rooms.set(room, (members = new Map()))
        members.set(key, name)
        return redis.eval("join", JOIN, [node, room, key, name, ttl, deadAfterMs]).pipe(
          Effect.map((first) => Number(first) === 1),
          Effect.tapError(() => Effect.sync(() => (forgetMember(room, key), uncount(room, key))))
        )
      }),
    leave: (room, key) =>
      Effect.suspend(() => {
        const counts = inRoom.get(room)
        if (counts === undefined || !counts.has(key)) return Effect.succeed(false)
        const lastHere = counts.remove(key)
        if (counts.size === 0) inRoom.delete(room)
        if (!lastHere) return Effect.succeed(false)
        forgetMember(room, key)
        return redis.eval("leave", LEAVE, [node, room, key, deadAfterMs]).pipe(Effect.map((last) => Number(last) === 1))
      }),
    rename: (key, names, name) =>
      Effect.suspend(() => {
        const roomList = Array.from(names)
        if (users.has(key)) users.set(key, name)
        for (const room of roomList) {
          const members = rooms.get(room)
          if (members?.has(key)) members.set(key, name)
        }
        return redis.eval("rename", RENAME, [node, key, name, ...roomList])
      }).pipe(Effect.asVoid),
    members: (room) =>
      redis
        .eval("members", MEMBERS, [room, deadAfterMs])
        .pipe(Effect.map((names) => sortNames(Array.isArray(names) ? names.map(String) : []))),
    rooms: (limit) =>
      redis.eval("rooms", ROOMS, [deadAfterMs]).pipe(
        Effect.map((flat) => {
          const found: Array<RoomCount> = []
          if (Array.isArray(flat)) {
            for (let i = 0; i + 1 < flat.length; i += 2)
              found.push({ room: String(flat[i]), members: Number(flat[i + 1]) })
          }
          return found.sort(byMembers).slice(0, Math.max(0, limit))
        })
      )
  }
  return Presence.of(service)
})
