/**
 * Names over Redis, cluster-wide: one hash per name key (`name:K` = session, node, spelling), taken and freed by
 * scripts that compare the owning session, so two nodes can never both hand out a name and only its owner frees
 * it. The `user<N>` counter is one `INCR`, shared by every node.
 */
import { Effect, Layer, Option } from "effect"
import { type NameOwner, Names, type NamesService } from "../backend/Names.js"
import { nameKey } from "../protocol/Protocol.js"
import { RedisClient } from "./RedisClient.js"
import { CLAIM_NAME, script } from "./RedisKeys.js"

/** `ARGV`: name key, session, node, name. */
const CLAIM = script(
  CLAIM_NAME +
    `
return claimName(ARGV[2], ARGV[3], ARGV[4], ARGV[5]) and 1 or 0
`
)

/**
 * `ARGV`: name key, user key, node, name. An authenticated user takes the name from a guest (returned with the node
 * its session lives on, to be renamed there), never from another user.
 */
const CLAIM_USER = script(`
local nameHash = key('name', ARGV[2])
local owner = redis.call('HMGET', nameHash, 'session', 'node', 'name')
if owner[1] and owner[1] ~= ARGV[3] and string.sub(owner[1], 1, 2) == 'u:' then return { 0 } end
redis.call('HSET', nameHash, 'session', ARGV[3], 'node', ARGV[4], 'name', ARGV[5])
if owner[1] and owner[1] ~= ARGV[3] then
  local node = redis.call('HGET', key('session', owner[1]), 'node') or owner[2]
  return { 1, owner[1], node, owner[3] }
end
return { 1 }
`)

/** `ARGV`: name key, session. */
const RELEASE = script(`
if redis.call('HGET', key('name', ARGV[2]), 'session') == ARGV[3] then redis.call('DEL', key('name', ARGV[2])) end
`)

/** `ARGV`: name key. The owner's node is where its session lives now: a resume may have moved it. */
const OWNER = script(`
local owner = redis.call('HMGET', key('name', ARGV[2]), 'name', 'session', 'node')
if not owner[2] then return false end
local node = redis.call('HGET', key('session', owner[2]), 'node')
if node then owner[3] = node end
return owner
`)

/** `ARGV`: floor. Never below `floor`, the highest number this node was given: numbers survive Redis losing them. */
const NEXT_GUEST = script(`
local n = redis.call('INCR', key('guests'))
if n <= tonumber(ARGV[2]) then
  n = tonumber(ARGV[2]) + 1
  redis.call('SET', key('guests'), string.format('%d', n))
end
return n
`)

export const layer = Layer.effect(
  Names,
  Effect.suspend(() => make)
)

const make = Effect.gen(function* () {
  const redis = yield* RedisClient
  let highestGuest = 0

  const service: NamesService = {
    claim: (owner) =>
      redis
        .eval("claim", CLAIM, [nameKey(owner.name), owner.session, owner.node, owner.name])
        .pipe(Effect.map((claimed) => claimed === 1)),
    claimForUser: (owner) =>
      redis.eval("claimUser", CLAIM_USER, [nameKey(owner.name), owner.session, owner.node, owner.name]).pipe(
        Effect.map((reply) => {
          const [claimed, session, node, name] = Array.isArray(reply) ? reply.map(String) : []
          return {
            claimed: claimed === "1",
            evicted:
              session === undefined
                ? Option.none<NameOwner>()
                : Option.some<NameOwner>({ session, node: node!, name: name! })
          }
        })
      ),
    release: (name, session) => redis.eval("release", RELEASE, [nameKey(name), session]).pipe(Effect.asVoid),
    owner: (name) =>
      redis.eval("owner", OWNER, [nameKey(name)]).pipe(
        Effect.map((reply) => {
          if (!Array.isArray(reply)) return Option.none<NameOwner>()
          const [spelling, session, node] = reply.map(String)
          return Option.some<NameOwner>({ name: spelling!, session: session!, node: node! })
        })
      ),
    nextGuest: Effect.suspend(() => redis.eval("nextGuest", NEXT_GUEST, [highestGuest])).pipe(
      Effect.map((reply) => {
        const n = Number(reply)
        highestGuest = Math.max(highestGuest, n)
        // Memory numbering starts at user0; INCR starts at 1.
        return n - 1
      })
    )
  }
  return Names.of(service)
})
