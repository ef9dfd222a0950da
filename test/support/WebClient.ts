/**
 * The browser client's reducer (web/state.ts) driven the way the page drives it, for the pure web tests: events in,
 * the commands of the last update out, and a clock the test moves. `authToken`: the page signs in with it.
 */
import type { ServerFrame } from "../../src/protocol/Protocol.js"
import { ChatState, type Command, type Event, update } from "../../web/state.js"

export const START = Date.UTC(2026, 0, 1)

export const makeClient = (authToken?: string) => {
  const state = new ChatState("t", {}, authToken)
  let now = START
  let commands: ReadonlyArray<Command> = []
  const on = (event: Event) => {
    commands = update(state, event, now)
    return commands
  }
  return {
    state,
    on,
    frame: (frame: ServerFrame) => on({ kind: "frame", frame }),
    type: (text: string) => on({ kind: "compose", text }),
    tick: (ms: number) => {
      now += ms
    },
    get now() {
      return now
    },
    get commands() {
      return commands
    }
  }
}

export type Client = ReturnType<typeof makeClient>
