/**
 * Which bytes go to which member of a room, for one batch of the room's events. Pure: the room actor runs it and
 * writes what it plans to the members' outlets. Consecutive messages are encoded once per dialect and the same
 * bytes go to every member of that dialect; a presence event is encoded once and reaches the members it concerns.
 * Each member gets all of its frames of the batch in one write.
 */
import type { RoomEvent } from "../backend/Hub.js"
import type * as Protocol from "../protocol/Protocol.js"
import type { Renderer } from "./Connection.js"
import { textFrames } from "./WireFrame.js"

/** Any event but a message: presence, a change to a message, typing, a read marker. */
export type PresenceEvent = Exclude<RoomEvent, { readonly _tag: "Message" }>

/** A room member as the plan needs it. */
export interface Member {
  readonly renderer: Renderer
  readonly session: { readonly id: string }
  /** The member's user key (`u:<sub>`, or the guest's session id). */
  readonly key: string
  /** True the first time this member meets a rename event (a user renamed in several shared rooms). */
  readonly firstSightOfRename: (eventId: string) => boolean
}

/** Frames of one encoding, how many they are, and the one-element list a write of them alone takes. */
interface Encoded {
  readonly bytes: Uint8Array
  readonly frames: number
  readonly alone: ReadonlyArray<Uint8Array>
}

/** Encodings of a segment by renderer: a room has members of one or two dialects, so a short list beats a Map. */
type Encodings = Array<Renderer | Encoded>

type Segment =
  | { readonly _tag: "Messages"; readonly messages: Array<Protocol.Message>; readonly encoded: Encodings }
  | { readonly _tag: "Presence"; readonly event: PresenceEvent; readonly encoded: Encodings }

const NOTHING: Encoded = { bytes: new Uint8Array(0), frames: 0, alone: [] }

/**
 * Presence and typing reach the other members; a rename reaches each member once, the renamed user's own connection
 * too; a read marker its user's connections; a change everyone (whose renderer shows it).
 */
const reaches = (member: Member, event: PresenceEvent) => {
  switch (event._tag) {
    case "Renamed":
      return member.firstSightOfRename(event.eventId)
    case "Change":
      return true
    case "Read":
      return member.key === event.user
    case "Typing":
      return member.key !== event.user
    default:
      return member.session.id !== event.session
  }
}

const encode = (payloads: ReadonlyArray<string | undefined>): Encoded => {
  const shown = payloads.filter((payload): payload is string => payload !== undefined)
  if (shown.length === 0) return NOTHING
  const bytes = textFrames(shown)
  return { bytes, frames: shown.length, alone: [bytes] }
}

const encodingOf = (segment: Segment, renderer: Renderer): Encoded => {
  const encoded = segment.encoded
  for (let i = 0; i < encoded.length; i += 2) if (encoded[i] === renderer) return encoded[i + 1] as Encoded
  const fresh =
    segment._tag === "Messages"
      ? encode(segment.messages.map(renderer.render))
      : encode([renderer.render(segment.event.frame)])
  encoded.push(renderer, fresh)
  return fresh
}

const segmentsOf = (events: ReadonlyArray<RoomEvent>): Array<Segment> => {
  const segments: Array<Segment> = []
  let run: Array<Protocol.Message> | undefined
  for (const event of events) {
    if (event._tag === "Message") {
      if (run === undefined) segments.push({ _tag: "Messages", messages: (run = []), encoded: [] })
      run.push(event.frame)
    } else {
      run = undefined
      segments.push({ _tag: "Presence", event, encoded: [] })
    }
  }
  return segments
}

/**
 * Calls `write` once for each member that gets anything of `events`, with its frames and their number. `parts`
 * is only valid during the call (a batch of one segment hands every member the same list). `known` says which
 * presence events a member has no need of: a joiner whose `members` list was taken after them.
 */
export const plan = <M extends Member>(
  events: ReadonlyArray<RoomEvent>,
  members: Iterable<M>,
  write: (member: M, parts: ReadonlyArray<Uint8Array>, frames: number) => void,
  known?: (member: M, event: PresenceEvent) => boolean
): void => {
  if (events.length === 0) return
  const segments = segmentsOf(events)
  if (segments.length === 1) {
    // The common case, a turn's messages or one presence event: no list per member.
    const segment = segments[0]!
    for (const member of members) {
      if (segment._tag === "Presence" && (!reaches(member, segment.event) || known?.(member, segment.event))) continue
      const encoded = encodingOf(segment, member.renderer)
      if (encoded.frames > 0) write(member, encoded.alone, encoded.frames)
    }
    return
  }
  for (const member of members) {
    const parts: Array<Uint8Array> = []
    let frames = 0
    for (const segment of segments) {
      if (segment._tag === "Presence" && (!reaches(member, segment.event) || known?.(member, segment.event))) continue
      const encoded = encodingOf(segment, member.renderer)
      if (encoded.frames === 0) continue
      parts.push(encoded.bytes)
      frames += encoded.frames
    }
    if (parts.length > 0) write(member, parts, frames)
  }
}
