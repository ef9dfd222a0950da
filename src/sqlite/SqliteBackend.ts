/**
 * The embedded store as the backends of one process: history, ids and resumable sessions in a SQLite file under
 * the data directory (`SqliteHub`, `SqliteSessions`, all writes through one `StoreWriter`), presence and names in
 * memory as in the memory backend. The chat core goes on top of it (`ChatServer.layer`), as for any backend.
 *
 * Names of sessions held for resume stay reserved across a restart: the store's held sessions claim them again
 * before the first connection is accepted.
 */
import { Duration, Effect, Layer } from "effect"
import { Names } from "../backend/Names.js"
import { NodeId } from "../backend/NodeId.js"
import { Presence } from "../backend/Presence.js"
import { Readiness } from "../backend/Readiness.js"
import { Sessions } from "../backend/Sessions.js"
import { ownerKeyOf } from "../backend/UserKey.js"
import * as SqliteHub from "./SqliteHub.js"
import * as SqliteSessions from "./SqliteSessions.js"
import * as SqliteStore from "./SqliteStore.js"
import { StoreError } from "./StoreError.js"
import { StoreWriter } from "./StoreWriter.js"

export interface SqliteBackendOptions {
  /** Created if missing; holds `effect-chat.db`. */
  readonly dataDir: string
  /** Messages each room keeps (default 10,000). */
  readonly historyRetain?: number | undefined
  /** Messages older than this go (default 30 days). */
  readonly historyMaxAge?: Duration.DurationInput | undefined
  /** Idle rooms leave memory after this long (default 10 minutes); the store keeps them. */
  readonly roomTtl?: Duration.DurationInput | undefined
  /** How long a dropped session stays resumable (default 2 minutes). */
  readonly resumeWindow?: Duration.DurationInput | undefined
  readonly synchronous?: SqliteStore.Synchronous | undefined
  /**
   * At most one group commit starts per this long (default 20 ms; 0: one per event-loop turn). A write to an idle
   * store commits at once; under load, writes wait up to this long and share a commit.
   */
  readonly commitWindow?: Duration.DurationInput | undefined
}

export const defaults = {
  historyRetain: 10_000,
  historyMaxAge: Duration.days(30),
  roomTtl: Duration.minutes(10),
  resumeWindow: Duration.minutes(2),
  /**
   * Measured: each commit costs the server about a millisecond of CPU here, so the number of commits a second is
   * what the store costs under load (README, Speed and memory). 20 ms caps it at 50: at 1,000 msg/s about 1.26x the
   * memory store's CPU (median; 10 ms, 100 a second, cost 1.4-1.5x), for a p50 of 13 ms instead of 7.
   */
  commitWindow: Duration.millis(20)
}

/** Names of held sessions claimed again, so nobody takes one while its client is on its way back. */
const reserveHeldNames = Layer.effectDiscard(
  Effect.gen(function* () {
    // After the sessions layer has held the sessions live at the last stop: theirs are the names that matter.
    yield* Sessions
    const names = yield* Names
    const node = yield* NodeId
    for (const record of yield* SqliteSessions.held) {
      yield* names.claim({ name: record.name, session: ownerKeyOf(record.session), node })
    }
  })
)

export const layer = (options: SqliteBackendOptions) => {
  const store = SqliteStore.layer({
    dataDir: options.dataDir,
    synchronous: options.synchronous
  })
  const writer = StoreWriter.layer({ window: options.commitWindow ?? defaults.commitWindow }).pipe(
    Layer.provideMerge(store)
  )
  const hub = SqliteHub.layer({
    roomTtl: Duration.decode(options.roomTtl ?? defaults.roomTtl),
    retention: {
      retain: options.historyRetain ?? defaults.historyRetain,
      maxAge: Duration.decode(options.historyMaxAge ?? defaults.historyMaxAge)
    }
  })
  const sessions = SqliteSessions.layer({
    resumeWindow: Duration.decode(options.resumeWindow ?? defaults.resumeWindow)
  })
  const readiness = Layer.effect(
    Readiness,
    Effect.map(StoreWriter, (w) => w.healthy)
  )
  const memory = Layer.mergeAll(Presence.layerMemory, Names.layerMemory, NodeId.layer)
  const backends = Layer.mergeAll(hub, sessions, readiness, memory).pipe(Layer.provideMerge(writer))
  return reserveHeldNames.pipe(
    Layer.provideMerge(backends),
    Layer.mapError((error) =>
      error instanceof StoreError
        ? error
        : new StoreError({ message: `store: ${String((error as Error)?.message ?? error)}`, cause: error })
    )
  )
}
