/**
 * What the fast fan-out relies on in `ws`, checked against the installed version: if an upgrade moves the TCP
 * socket, starts compressing, or stops writing synchronously, these tests fail before any user loses a message.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import type { AddressInfo } from "node:net"
import * as Net from "node:net"
import * as Path from "node:path"
import { WebSocket, WebSocketServer } from "ws"
import { textFrame } from "../src/server/WireFrame.js"
import { tcpSocket, WsOutlet } from "../src/transport/WsOutlet.js"

/** A server-side `ws` socket and the client talking to it, as the chat server creates them. */
const pair = async () => {
  const server = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: false, clientTracking: false })
  await new Promise<void>((resolve) => server.once("listening", () => resolve()))
  const accepted = new Promise<WebSocket>((resolve) => server.once("connection", resolve))
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`)
  const received: Array<string> = []
  client.on("message", (data) => received.push(data.toString()))
  await new Promise((resolve) => client.once("open", resolve))
  const ws = await accepted
  const close = () => {
    client.terminate()
    ws.terminate()
    server.close()
  }
  return { client, ws, received, close }
}

const until = async (condition: () => boolean, timeoutMs = 3000) => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached")
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const limits = { maxBufferedBytes: 1024 * 1024, maxQueuedMessages: 2000, closeGraceMs: 200 }

describe("ws internals used by WsOutlet", () => {
  it("runs on ws 8, whose server sockets keep the TCP socket in `_socket`", async () => {
    const pkg = JSON.parse(
      Fs.readFileSync(Path.resolve(import.meta.dirname, "../node_modules/ws/package.json"), "utf8")
    )
    expect(pkg.version).toMatch(/^8\./)
    const { close, ws } = await pair()
    try {
      expect(tcpSocket(ws)).toBeInstanceOf(Net.Socket)
      expect(ws.extensions).toBe("")
    } finally {
      close()
    }
  })

  it("delivers pre-built frames written to the TCP socket, in order with ws's own sends", async () => {
    const { close, received, ws } = await pair()
    try {
      const outlet = new WsOutlet(ws, limits, () => {})
      ws.send("one")
      outlet.write([textFrame(Buffer.from("two")), textFrame(Buffer.from("three"))], 2)
      ws.send("four")
      outlet.write([textFrame(Buffer.from("x".repeat(70_000)))], 1)
      ws.send("six")
      await until(() => received.length === 6)
      expect(received.map((text) => (text.length > 10 ? `${text.length}` : text))).toEqual([
        "one",
        "two",
        "three",
        "four",
        "70000",
        "six"
      ])
    } finally {
      close()
    }
  })

  it("sees what the peer has not read in the socket's writableLength, and cuts a slow consumer with 4008", async () => {
    const { client, close, ws } = await pair()
    try {
      let cut = 0
      const outlet = new WsOutlet(ws, { ...limits, maxBufferedBytes: 64 * 1024 }, () => cut++)
      // the client stops reading: the kernel buffers fill, then the socket's own buffer
      tcpSocket(client as unknown as WebSocket)!.pause()
      const chunk = textFrame(Buffer.alloc(16 * 1024, 97))
      for (let i = 0; i < 2000 && cut === 0; i++) outlet.write([chunk], 1)
      expect(tcpSocket(ws)!.writableLength).toBeGreaterThan(64 * 1024)
      expect(cut).toBe(1)
      expect(ws.readyState).toBe(WebSocket.CLOSING)
      // nothing more is written after the cut
      const before = tcpSocket(ws)!.writableLength
      outlet.write([chunk], 1)
      expect(tcpSocket(ws)!.writableLength).toBe(before)
      // the peer that does not read within the grace is destroyed
      await until(() => ws.readyState === WebSocket.CLOSED)
    } finally {
      close()
    }
  })

  it("counts a pong as a receipt only when it echoes the outlet's outstanding ping, and pings again once answered", async () => {
    const { client, close, ws } = await pair()
    try {
      const outlet = new WsOutlet(ws, limits, () => {})
      ws.on("pong", (payload) => outlet.pong(payload))
      expect(outlet.confirmed).toBe(0)
      // A pong nobody asked for proves nothing.
      client.pong("123456")
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(outlet.confirmed).toBe(0)
      const pings: Array<string> = []
      client.on("ping", (payload) => pings.push(payload.toString()))
      outlet.receipt()
      // Asked again while the first is outstanding: one more ping once the first is answered, not two now.
      outlet.receipt()
      outlet.receipt()
      await until(() => pings.length === 2)
      await until(() => outlet.confirmed === Number(pings[1]))
      expect(Number(pings[1])).toBeGreaterThan(Number(pings[0]))
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(pings.length).toBe(2)
    } finally {
      close()
    }
  })
})
