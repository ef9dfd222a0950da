/**
 * Ownership of names, compared case-insensitively, and the `user<N>` counter that never reuses a number. A name
 * stays owned by its session while the session is held for resume. The owner's node lets a direct message reach it.
 */
import { Context, Effect, Layer, Option } from "effect"
import type { BackendError } from "./BackendError.js"
import { nameKey } from "../protocol/Protocol.js"
import { isUserKey } from "./UserKey.js"

export interface NameOwner {
  /** The owner's own spelling. */
  readonly name: string
  readonly session: string
  readonly node: string
}

export interface NamesService {
  /** Takes `name` for `owner` unless another session owns it; true when `owner` owns it afterwards. */
  readonly claim: (owner: NameOwner) => Effect.Effect<boolean, BackendError>
  /**
   * Takes `name` for an authenticated user (`owner.session` is its user key). A guest holding it loses it and is
   * returned, to be renamed; another user holding it refuses (`claimed: false`).
   */
  readonly claimForUser: (owner: NameOwner) => Effect.Effect<UserClaim, BackendError>
  /** Frees `name` if `session` owns it. */
  readonly release: (name: string, session: string) => Effect.Effect<void, BackendError>
  readonly owner: (name: string) => Effect.Effect<Option.Option<NameOwner>, BackendError>
  /** The next number for an assigned `user<N>` name. */
  readonly nextGuest: Effect.Effect<number, BackendError>
}

export interface UserClaim {
  readonly claimed: boolean
  /** The guest that held the name until now. */
  readonly evicted: Option.Option<NameOwner>
}

export class Names extends Context.Tag("effect-chat/Names")<Names, NamesService>() {
  static layerMemory = Layer.sync(Names, () => makeMemory())
}

export const makeMemory = (): NamesService => {
  const owners = new Map<string, NameOwner>()
  let guests = 0
  return {
    claim: (owner) =>
      Effect.sync(() => {
        const key = nameKey(owner.name)
        const current = owners.get(key)
        if (current !== undefined && current.session !== owner.session) return false
        owners.set(key, owner)
        return true
      }),
    claimForUser: (owner) =>
      Effect.sync(() => {
        const key = nameKey(owner.name)
        const current = owners.get(key)
        if (current !== undefined && current.session !== owner.session && isUserKey(current.session)) {
          return { claimed: false, evicted: Option.none() }
        }
        owners.set(key, owner)
        return {
          claimed: true,
          evicted: current !== undefined && current.session !== owner.session ? Option.some(current) : Option.none()
        }
      }),
    release: (name, session) =>
      Effect.sync(() => {
        const key = nameKey(name)
        if (owners.get(key)?.session === session) owners.delete(key)
      }),
    owner: (name) => Effect.sync(() => Option.fromNullable(owners.get(nameKey(name)))),
    nextGuest: Effect.sync(() => guests++)
  }
}
