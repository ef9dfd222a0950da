/**
 * The baseline for bench-fanout: the smallest hand-written `ws` broadcast server that speaks enough of protocol v1
 * for the same harness. It keeps rooms in plain Maps and, for each `send`, serialises the message once and calls
 * `ws.send` on every member in a loop. No resume, no history, no validation beyond what the harness needs: it is
 * what the Effect server's fan-out is compared with, not a second implementation.
 *
 *   node dist/scripts/raw-ws-server.js --port 0 --host 127.0.0.1
 *
 * JSON dialect (subprotocol effect-chat.v1): `hello` → `welcome`, then `members` and an empty `history` per room;
 * `send` → `message` (per-room id from 1) to every member; `join`/`leave`; `ping` → `pong`; `ack` when `ref` is
 * given.
 * Plain dialect: greeting line, `[name]: text` to the room, `/join ROOM`, `/quit`. GET /healthz as the real server.
 */
import * as http from "node:http"
import { parseArgs } from "node:util"
import { WebSocket, WebSocketServer } from "ws"

const SUBPROTOCOL = "effect-chat.v1"
// Same role as the real server's slow-consumer bound: a client that stops reading must not grow memory forever.
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024

const { values } = parseArgs({
  options: { port: { type: "string", default: "0" }, host: { type: "string", default: "127.0.0.1" } },
  strict: true
})

interface Client {
  readonly ws: WebSocket
  readonly json: boolean
  name: string | undefined
  readonly rooms: Set<string>
}

interface Room {
  nextId: number
  readonly members: Set<Client>
}

const rooms = new Map<string, Room>()
let sessions = 0
let nextUser = 0

const roomFor = (name: string): Room => {
  let room = rooms.get(name)
  if (room === undefined) {
    room = { nextId: 1, members: new Set() }
    rooms.set(name, room)
  }
  return room
}

const sendBuffer = (client: Client, data: Buffer): void => {
  if (client.ws.readyState !== WebSocket.OPEN) return
  if (client.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
    client.ws.close(4008, "slow consumer")
    leaveAll(client)
    return
  }
  client.ws.send(data, { binary: false })
}

const broadcast = (roomName: string, from: string, text: string): number => {
  const room = roomFor(roomName)
  const id = room.nextId++
  let jsonFrame: Buffer | undefined
  let plainFrame: Buffer | undefined
  for (const member of room.members) {
    if (member.json) {
      jsonFrame ??= Buffer.from(JSON.stringify({ type: "message", room: roomName, id, from, text, at: Date.now() }))
      sendBuffer(member, jsonFrame)
    } else {
      plainFrame ??= Buffer.from(`[${from}]: ${text}`)
      sendBuffer(member, plainFrame)
    }
  }
  return id
}

const join = (client: Client, roomName: string): void => {
  const room = roomFor(roomName)
  room.members.add(client)
  client.rooms.add(roomName)
}

const leave = (client: Client, roomName: string): void => {
  const room = rooms.get(roomName)
  client.rooms.delete(roomName)
  if (room === undefined) return
  room.members.delete(client)
  if (room.members.size === 0) rooms.delete(roomName)
}

const leaveAll = (client: Client): void => {
  for (const roomName of [...client.rooms]) leave(client, roomName)
}

const reply = (client: Client, frame: object): void => client.ws.send(JSON.stringify(frame))

const onJson = (client: Client, data: string): void => {
  let frame: { type?: unknown; room?: unknown; rooms?: unknown; name?: unknown; text?: unknown; ref?: unknown }
  try {
    frame = JSON.parse(data)
  } catch {
    reply(client, { type: "error", code: "invalid_frame", message: "invalid JSON" })
    return
  }
  const ref = typeof frame.ref === "string" ? frame.ref : undefined
  if (client.name === undefined) {
    if (frame.type !== "hello") {
      reply(client, { type: "error", code: "invalid_frame", message: "expected hello" })
      client.ws.close(1008, "expected hello")
      return
    }
    sessions++
    client.name = typeof frame.name === "string" ? frame.name : `user${nextUser++}`
    const wanted = Array.isArray(frame.rooms)
      ? frame.rooms.filter((r): r is string => typeof r === "string")
      : ["lobby"]
    for (const roomName of wanted) join(client, roomName)
    reply(client, {
      type: "welcome",
      protocol: 1,
      name: client.name,
      rooms: wanted,
      users: sessions,
      resume: "",
      resumed: false
    })
    for (const roomName of wanted) {
      reply(client, { type: "members", room: roomName, names: [...roomFor(roomName).members].map((m) => m.name) })
      reply(client, { type: "history", room: roomName, messages: [], more: false })
    }
    return
  }
  switch (frame.type) {
    case "send": {
      if (typeof frame.room !== "string" || typeof frame.text !== "string") break
      if (!client.rooms.has(frame.room)) {
        reply(client, { type: "error", code: "not_in_room", message: frame.room, ...(ref ? { ref } : {}) })
        return
      }
      const id = broadcast(frame.room, client.name, frame.text)
      if (ref !== undefined) reply(client, { type: "ack", ref, id })
      return
    }
    case "join":
      if (typeof frame.room !== "string") break
      join(client, frame.room)
      if (ref !== undefined) reply(client, { type: "ack", ref })
      reply(client, { type: "members", room: frame.room, names: [...roomFor(frame.room).members].map((m) => m.name) })
      reply(client, { type: "history", room: frame.room, messages: [], more: false })
      return
    case "leave":
      if (typeof frame.room !== "string") break
      leave(client, frame.room)
      if (ref !== undefined) reply(client, { type: "ack", ref })
      return
    case "ping":
      reply(client, { type: "pong", ...(ref ? { ref } : {}) })
      return
  }
  reply(client, { type: "error", code: "invalid_frame", message: "unsupported frame", ...(ref ? { ref } : {}) })
}

const onPlain = (client: Client, line: string): void => {
  if (line.startsWith("/join ")) {
    leaveAll(client)
    join(client, line.slice(6).trim())
    client.ws.send(`You are now in ${line.slice(6).trim()}`)
  } else if (line === "/quit") {
    client.ws.close(1000)
  } else if (line.startsWith("/")) {
    client.ws.send(`Unknown command: ${line.split(" ")[0]}`)
  } else {
    for (const roomName of client.rooms) broadcast(roomName, client.name!, line)
  }
}

const server = http.createServer((request, response) => {
  if (request.url === "/healthz") {
    const memory = process.memoryUsage()
    response.writeHead(200, { "content-type": "application/json" })
    response.end(
      JSON.stringify({
        status: "ok",
        connections: wss.clients.size,
        users: sessions,
        rooms: rooms.size,
        heapUsed: memory.heapUsed,
        rss: memory.rss
      })
    )
  } else {
    response.writeHead(404).end()
  }
})

const wss = new WebSocketServer({
  server,
  path: "/chat",
  maxPayload: 64 * 1024,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false)
})

wss.on("connection", (ws, request) => {
  const client: Client = { ws, json: ws.protocol === SUBPROTOCOL, name: undefined, rooms: new Set() }
  if (!client.json) {
    sessions++
    const asked = new URL(request.url ?? "/", "http://x").searchParams.get("name")
    client.name = asked ?? `user${nextUser++}`
    join(client, "lobby")
    ws.send(`You are connected! There are ${sessions} users here.`)
  }
  ws.on("message", (data, isBinary) => {
    if (isBinary) {
      ws.close(1003)
      return
    }
    const text = data.toString()
    if (client.json) onJson(client, text)
    else onPlain(client, text)
  })
  ws.on("close", () => {
    if (client.name !== undefined) sessions--
    leaveAll(client)
  })
  ws.on("error", () => {})
})

const shutdown = () => {
  for (const ws of wss.clients) ws.close(1001)
  setTimeout(() => {
    for (const ws of wss.clients) ws.terminate()
    process.exit(0)
  }, 500).unref()
  server.close(() => process.exit(0))
}
process.on("SIGTERM", shutdown)
process.on("SIGINT", shutdown)

server.listen(Number(values.port), values.host, () => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : values.port
  process.stdout.write(`raw-ws-server listening on http://${values.host}:${port}\n`)
})
