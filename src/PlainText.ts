/**
 * How server events read in the plain dialect (the classic Ktor chat's lines). Only what a person at a raw WebSocket
 * tool needs is shown: messages, direct messages and errors; presence frames have no line.
 */
import type * as Protocol from "./protocol/Protocol.js"

export const messageLine = (message: { readonly from: string; readonly text: string }): string =>
  `[${message.from}]: ${message.text}`

export const plainLine = (frame: Protocol.ServerFrame): string | undefined => {
  switch (frame.type) {
    case "message":
      return messageLine(frame)
    case "direct":
      return `[${frame.from} → ${frame.to}]: ${frame.text}`
    case "error":
      return `Error: ${frame.message}`
    default:
      return undefined
  }
}
