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

export type PresenceEvent = Exclude<RoomEvent, { readonly _tag: "Message" }>

/** A room member as the plan needs it. */
export interface Member {
  readonly renderer: Renderer
  readonly session: { readonly id: string }
  /** True the first time this member meets a rename event (a user renamed in several shared rooms). */
  readonly firstSightOfRename: (eventId: string) => boolean
}

/** Frames of one encoding, and how many they are. */
interface Encoded {
  readonly bytes: Uint8Array
  readonly frames: number
}

type Segment =
  | { readonly _tag: "Messages"; readonly messages: Array<Protocol.Message>; readonly encoded: Map<Renderer, Encoded> }
  | { readonly _tag: "Presence"; readonly event: PresenceEvent; readonly encoded: Map<Renderer, Encoded> }

const NOTHING: Encoded = { bytes: new Uint8Array(0), frames: 0 }

/** Presence reaches the other members; a rename reaches each member once, the renamed user's own connection too. */
const reaches = (member: Member, event: PresenceEvent) =>
  event._tag === "Renamed" ? member.firstSightOfRename(event.eventId) : member.session.id !== event.session

const encode = (payloads: ReadonlyArray<string | undefined>): Encoded => {
  const shown = payloads.filter((payload): payload is string => payload !== undefined)
  return shown.length === 0 ? NOTHING : { bytes: textFrames(shown), frames: shown.length }
}

const encodingOf = (segment: Segment, renderer: Renderer): Encoded => {
  let encoded = segment.encoded.get(renderer)
  if (encoded === undefined) {
    encoded =
      segment._tag === "Messages"
        ? encode(segment.messages.map(renderer.render))
        : encode([renderer.render(segment.event.frame)])
    segment.encoded.set(renderer, encoded)
  }
  return encoded
}

const segmentsOf = (events: ReadonlyArray<RoomEvent>): Array<Segment> => {
  const segments: Array<Segment> = []
  let run: Array<Protocol.Message> | undefined
  for (const event of events) {
    if (event._tag === "Message") {
      if (run === undefined) segments.push({ _tag: "Messages", messages: (run = []), encoded: new Map() })
      run.push(event.frame)
    } else {
      run = undefined
      segments.push({ _tag: "Presence", event, encoded: new Map() })
    }
  }
  return segments
}

/** Calls `write` once for each member that gets anything of `events`, with its frames and their number. */
export const plan = <M extends Member>(
  events: ReadonlyArray<RoomEvent>,
  members: Iterable<M>,
  write: (member: M, parts: ReadonlyArray<Uint8Array>, frames: number) => void
): void => {
  if (events.length === 0) return
  const segments = segmentsOf(events)
  for (const member of members) {
    const parts: Array<Uint8Array> = []
    let frames = 0
    for (const segment of segments) {
      if (segment._tag === "Presence" && !reaches(member, segment.event)) continue
      const encoded = encodingOf(segment, member.renderer)
      if (encoded.frames === 0) continue
      parts.push(encoded.bytes)
      frames += encoded.frames
    }
    if (parts.length > 0) write(member, parts, frames)
  }
}
