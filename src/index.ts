/**
 * effect-chat as a library. The server side: `ChatServer` (the core as a Layer, over in-memory or Redis backends)
 * and `ChatHttpServer` (a Node HTTP listener for it). The client side: the `ChatClient` service. Custom backends
 * implement `Hub`, `Presence`, `Names` and `Sessions`.
 */
export * as Protocol from "./protocol/Protocol.js"
export { ServerConfig, type ServerSettings } from "./ServerConfig.js"
export { ChatServer, type ChatServerService } from "./ChatServer.js"
export * as ChatHttpServer from "./ChatHttpServer.js"
export { Chat, ChatError, NodeId } from "./Chat.js"
export { ConnectionRegistry } from "./ConnectionRegistry.js"
export { Hub, type HubService, type RoomEvent, type RoomFeed, type HistoryPage, type DirectEnvelope } from "./Hub.js"
export { Presence, type PresenceService } from "./Presence.js"
export { Names, type NamesService, type NameOwner } from "./Names.js"
export { Sessions, type SessionsService, type SessionRecord } from "./Sessions.js"
export { Readiness } from "./HttpRoutes.js"
export { BackendError } from "./BackendError.js"
export {
  ChatClient,
  ChatClientError,
  reconnectSchedule,
  type ChatClientOptions,
  type ChatClientService,
  type ChatEvent,
  type ConnectionEvent
} from "./client/ChatClient.js"
export * as RedisBackend from "./redis/RedisBackend.js"
