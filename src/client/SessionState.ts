/**
 * What the client knows of its session across connections: its name, its rooms and the token to resume with. It
 * builds the `hello` of each connection from them, so a reconnect asks for the same name and rooms. Effect-free
 * and socket-free.
 */
import type * as Protocol from "../protocol/Protocol.js"
import { isValidName, nameKey } from "../protocol/Rules.js"

export interface SessionState {
  /** The name asked for until the first `welcome`, then the session's. */
  readonly name: () => string | undefined
  /** The rooms asked for until the first `welcome`, then the session's. */
  readonly rooms: () => ReadonlyArray<string> | undefined
  /** The `hello` of the next connection; `since` gives the resume's last message id per room. */
  readonly hello: (since: (rooms: ReadonlyArray<string>) => Record<string, number>) => Protocol.Hello
  readonly welcomed: (welcome: typeof Protocol.Welcome.Type) => void
  /** Follows the server's frames that change the session unasked: a join's `members`, our `renamed` and `left`. */
  readonly observe: (frame: Protocol.ServerFrame) => void
  /** A request of ours succeeded. */
  readonly joined: (room: string) => void
  readonly left: (room: string) => void
  readonly renamed: (name: string) => void
}

export const make = (options: {
  readonly name?: string | undefined
  readonly rooms?: ReadonlyArray<string> | undefined
}): SessionState => {
  let name = options.name
  let rooms = options.rooms
  let token: string | undefined

  const isMe = (other: string) => name !== undefined && nameKey(other) === nameKey(name)
  const joined = (room: string) => {
    if (!rooms?.includes(room)) rooms = [...(rooms ?? []), room]
  }
  const left = (room: string) => {
    rooms = rooms?.filter((r) => r !== room)
  }

  return {
    name: () => name,
    rooms: () => rooms,
    hello: (since) => ({
      type: "hello",
      // A name assigned by the server (`user<digits>`) cannot be asked for again.
      ...(name !== undefined && (token === undefined || isValidName(name)) ? { name } : {}),
      ...(rooms !== undefined ? { rooms } : {}),
      ...(token !== undefined ? { resume: { token, since: since(rooms ?? []) } } : {})
    }),
    welcomed: (welcome) => {
      token = welcome.resume
      name = welcome.name
      rooms = welcome.rooms
    },
    observe: (frame) => {
      switch (frame.type) {
        case "members":
          return joined(frame.room)
        case "renamed":
          if (isMe(frame.from)) name = frame.to
          return
        case "left":
          if (isMe(frame.name)) left(frame.room)
          return
      }
    },
    joined,
    left,
    renamed: (next) => {
      name = next
    }
  }
}
