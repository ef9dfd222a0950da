/**
 * Sessions that can be resumed. Every `welcome` carries a fresh token; a token is good for one resume. A session
 * dropped without a clean close is held for the resume window with its name and rooms; a live session whose token
 * is presented again is taken over by the new connection.
 */
import { Context, Effect, Layer, Option } from "effect"
import * as Crypto from "node:crypto"
import type { BackendError } from "./BackendError.js"

export interface SessionRecord {
  readonly session: string
  readonly name: string
  readonly rooms: ReadonlyArray<string>
  readonly node: string
  /** Epoch ms until which a dropped session may be resumed; undefined while a connection holds it. */
  readonly heldUntil?: number | undefined
  /** Per room, the rev of the last message change the session's connection is known to have received. */
  readonly revs?: Readonly<Record<string, number>> | undefined
}

/**
 * A record's rooms as the stores keep them, in one text field: a JSON array of names, as before changes had revs,
 * or `{"rooms": [...], "revs": {...}}` when there are revs to keep. Either form reads back.
 */
export const encodeRooms = (record: SessionRecord): string =>
  record.revs === undefined ? JSON.stringify(record.rooms) : JSON.stringify({ rooms: record.rooms, revs: record.revs })

export const decodeRooms = (
  text: string
): { readonly rooms: ReadonlyArray<string>; readonly revs?: Readonly<Record<string, number>> } => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return { rooms: [] }
  }
  const names = (value: unknown) =>
    Array.isArray(value) ? value.filter((room): room is string => typeof room === "string") : []
  if (Array.isArray(parsed)) return { rooms: names(parsed) }
  if (typeof parsed !== "object" || parsed === null) return { rooms: [] }
  const { revs, rooms } = parsed as { readonly rooms?: unknown; readonly revs?: unknown }
  const kept: Record<string, number> = {}
  if (typeof revs === "object" && revs !== null) {
    for (const [room, rev] of Object.entries(revs)) if (typeof rev === "number" && rev > 0) kept[room] = rev
  }
  return { rooms: names(rooms), revs: kept }
}

export interface SessionsService {
  /** Stores the session's record under a fresh token and invalidates the previous one. */
  readonly issue: (record: SessionRecord) => Effect.Effect<string, BackendError>
  readonly update: (record: SessionRecord) => Effect.Effect<void, BackendError>
  /** Consumes `token`: the record it names, if the session is live or still held. */
  readonly redeem: (token: string) => Effect.Effect<Option.Option<SessionRecord>, BackendError>
  readonly remove: (session: string) => Effect.Effect<void, BackendError>
  /** Removes and returns the held sessions whose window ended before `now`. */
  readonly expire: (now: number) => Effect.Effect<ReadonlyArray<SessionRecord>, BackendError>
}

export class Sessions extends Context.Tag("effect-chat/Sessions")<Sessions, SessionsService>() {
  static layerMemory = Layer.sync(Sessions, () => makeMemory())
}

/** Random bytes drawn from the OS in blocks: one `randomBytes` call per 170 tokens instead of one per token. */
const TOKEN_BYTES = 24
let pool = Buffer.alloc(0)
let poolAt = 0

/** 192 random bits, URL-safe: cannot be guessed. */
export const newToken = (): string => {
  if (poolAt + TOKEN_BYTES > pool.length) {
    pool = Crypto.randomBytes(TOKEN_BYTES * 170)
    poolAt = 0
  }
  const token = pool.toString("base64url", poolAt, poolAt + TOKEN_BYTES)
  poolAt += TOKEN_BYTES
  return token
}
export const newSessionId = (): string => Crypto.randomUUID()

export const makeMemory = (): SessionsService => {
  const records = new Map<string, SessionRecord & { token: string }>()
  const tokens = new Map<string, string>()
  return {
    issue: (record) =>
      Effect.sync(() => {
        const previous = records.get(record.session)
        if (previous !== undefined) tokens.delete(previous.token)
        const token = newToken()
        records.set(record.session, { ...record, token })
        tokens.set(token, record.session)
        return token
      }),
    update: (record) =>
      Effect.sync(() => {
        const previous = records.get(record.session)
        if (previous !== undefined) records.set(record.session, { ...record, token: previous.token })
      }),
    redeem: (token) =>
      Effect.sync(() => {
        const session = tokens.get(token)
        if (session === undefined) return Option.none()
        tokens.delete(token)
        const record = records.get(session)
        if (record === undefined || (record.heldUntil !== undefined && record.heldUntil < Date.now())) {
          return Option.none()
        }
        return Option.some(record)
      }),
    remove: (session) =>
      Effect.sync(() => {
        const record = records.get(session)
        if (record !== undefined) tokens.delete(record.token)
        records.delete(session)
      }),
    expire: (now) =>
      Effect.sync(() => {
        const expired: Array<SessionRecord> = []
        for (const record of records.values()) {
          if (record.heldUntil !== undefined && record.heldUntil < now) {
            expired.push(record)
            records.delete(record.session)
            tokens.delete(record.token)
          }
        }
        return expired
      })
  }
}
