/**
 * What can happen to a message once it is in history: its author edits or deletes it, members react to it. Pure,
 * so every backend applies the same rules the same way — the memory hub to the object it holds, the embedded store
 * and Redis to the state they read back — and the rules are unit-tested without a store.
 *
 * A stored message is its current wire frame (edited text, `deleted`, reactions by name) plus what the wire never
 * shows: who may change it (`author`, a user key or a guest's session) and who reacted under which key, so a
 * reaction toggles per user even when the user's name changes.
 */
import * as Either from "effect/Either"
import type * as Protocol from "../protocol/Protocol.js"
import { MAX_REACTIONS } from "../protocol/Rules.js"

export interface Reactor {
  readonly key: string
  readonly name: string
}

export interface StoredMessage {
  readonly frame: Protocol.Message
  /** The key whose edits and deletes are accepted; undefined for a message nobody may change but a moderator. */
  readonly author: string | undefined
  /** Who reacted with each emoji, in the order they did; the frame's `reactions` are their names. */
  readonly reactors?: Readonly<Record<string, ReadonlyArray<Reactor>>> | undefined
}

/** A request to change a message; `by` is the requester's key (undefined: a moderator, for `Delete`). */
export type ChangeRequest =
  | { readonly _tag: "Edit"; readonly id: number; readonly text: string; readonly by: string }
  | { readonly _tag: "Delete"; readonly id: number; readonly by: string | undefined }
  | {
      readonly _tag: "React"
      readonly id: number
      readonly emoji: string
      readonly on: boolean
      readonly by: string
      readonly name: string
    }

export type ChangeRefusal = "no_such_message" | "forbidden" | "too_many_reactions"

/** The message after the change and the frame that tells members; `undefined` when nothing changed (acked all the same). */
export type Applied = { readonly message: StoredMessage; readonly change: Protocol.Change } | undefined

export const apply = (
  message: StoredMessage | undefined,
  request: ChangeRequest,
  at: number
): Either.Either<Applied, ChangeRefusal> => {
  // A deleted message is gone for every purpose but its place in the order.
  if (message === undefined || message.frame.deleted === true) {
    return request._tag === "Delete" && message !== undefined && mayDelete(message, request.by)
      ? Either.right(undefined)
      : Either.left("no_such_message")
  }
  const { frame } = message
  switch (request._tag) {
    case "Edit": {
      if (message.author === undefined || message.author !== request.by) return Either.left("forbidden")
      return Either.right({
        message: { ...message, frame: { ...frame, text: request.text, edited: at } },
        change: { type: "edited", room: frame.room, id: frame.id, text: request.text, at }
      })
    }
    case "Delete": {
      if (!mayDelete(message, request.by)) return Either.left("forbidden")
      const { edited: _edited, reactions: _reactions, ...rest } = frame
      return Either.right({
        message: { author: message.author, frame: { ...rest, text: "", deleted: true } },
        change: { type: "deleted", room: frame.room, id: frame.id, at }
      })
    }
    case "React": {
      const reactors = message.reactors ?? {}
      const current = Object.hasOwn(reactors, request.emoji) ? reactors[request.emoji]! : []
      const mine = current.find((reactor) => reactor.key === request.by)
      if ((mine !== undefined) === request.on) return Either.right(undefined)
      if (request.on && current.length === 0 && Object.keys(reactors).length >= MAX_REACTIONS) {
        return Either.left("too_many_reactions")
      }
      const next = request.on
        ? [...current, { key: request.by, name: request.name }]
        : current.filter((reactor) => reactor.key !== request.by)
      const updated: Record<string, ReadonlyArray<Reactor>> = { ...reactors }
      if (next.length === 0) delete updated[request.emoji]
      else updated[request.emoji] = next
      const reactions = namesOf(updated)
      const { reactions: _previous, ...rest } = frame
      return Either.right({
        message: {
          ...message,
          reactors: updated,
          frame: reactions === undefined ? rest : { ...rest, reactions }
        },
        change: {
          type: "reaction",
          room: frame.room,
          id: frame.id,
          emoji: request.emoji,
          // Taking a reaction back names it as it was listed (the user may have been renamed since).
          name: mine?.name ?? request.name,
          on: request.on
        }
      })
    }
  }
}

const mayDelete = (message: StoredMessage, by: string | undefined) =>
  by === undefined || (message.author !== undefined && message.author === by)

/**
 * Logged changes as a resuming member may see them: a message deleted later in the list gets only its `deleted`,
 * never an earlier `edited` (which carries text that is gone) or reaction.
 */
export const collapse = <A extends { readonly frame: Protocol.Change }>(changes: ReadonlyArray<A>): Array<A> => {
  const deleted = new Set<number>()
  for (const change of changes) if (change.frame.type === "deleted") deleted.add(change.frame.id)
  if (deleted.size === 0) return changes.slice()
  return changes.filter((change) => change.frame.type === "deleted" || !deleted.has(change.frame.id))
}

/** The wire's `reactions` (names per emoji), or undefined when nobody reacted. */
export const namesOf = (
  reactors: Readonly<Record<string, ReadonlyArray<Reactor>>> | undefined
): Protocol.Reactions | undefined => {
  if (reactors === undefined) return undefined
  let reactions: Record<string, Array<string>> | undefined
  for (const emoji of Object.keys(reactors)) {
    const names = reactors[emoji]!.map((reactor) => reactor.name)
    if (names.length > 0) (reactions ??= {})[emoji] = names
  }
  return reactions
}

/**
 * A message as a connection without the `edits` feature sees it: a deleted one says `[deleted]` (it would show an
 * empty line otherwise); the original text is gone either way.
 */
export const forV1 = (message: Protocol.Message, deletedText: string): Protocol.Message =>
  message.deleted === true ? { ...message, text: deletedText } : message
