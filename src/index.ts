/**
 * effect-chat as a library. The server side: `ChatServer` (the core as a Layer, over in-memory backends or any that
 * implement the `backend/` contracts) and `ChatHttpServer` (a Node HTTP listener for it). The client side: the
 * `ChatClient` service. Identity and the application's rules plug in as `ChatHooks` (`JwtHooks` is the built-in
 * token check). Redis backends are a separate entry, `effect-chat/redis`, so this one never loads `redis`.
 */
export * as Protocol from "./protocol/Protocol.js"
export {
  ServerConfig,
  type ServerSettings,
  type ServerOverrides,
  type AuthMode,
  type AuthSettings
} from "./server/ServerConfig.js"
export {
  ChatHooks,
  HookRefusal,
  type Hooks,
  type ChatHooksService,
  type ConnectRequest,
  type Action,
  type SendContext,
  type Published,
  type PresenceEvent
} from "./server/ChatHooks.js"
export { type Identity, roomAllowed, matchesRoom } from "./server/Identity.js"
export * as JwtVerifier from "./auth/JwtVerifier.js"
export * as JwtHooks from "./auth/JwtHooks.js"
export { ChatServer, type ChatServerService, type DisconnectOptions } from "./http/ChatServer.js"
/** The server API's contract (`/api/v1/`): derive a typed client with `HttpApiClient.make(ServerApi.ServerApi)`. */
export * as ServerApi from "./api/ServerApi.js"
export * as ApiErrors from "./api/ApiErrors.js"
export * as ChatHttpServer from "./http/ChatHttpServer.js"
export { Chat, type ChatService } from "./server/Chat.js"
export { ChatError } from "./server/ChatError.js"
/** The server's metrics (Effect `Metric`s) and the tag `/metrics` looks for; `effect-chat/prometheus` exports them. */
export * as ChatMetrics from "./metrics/ChatMetrics.js"
export { MetricsScrape } from "./metrics/MetricsScrape.js"
export { ConnectionRegistry } from "./server/ConnectionRegistry.js"
export { NodeId } from "./backend/NodeId.js"
export {
  Hub,
  type HubService,
  type RoomEvent,
  type RoomFeed,
  type HistoryPage,
  type DirectEnvelope
} from "./backend/Hub.js"
export { Presence, type PresenceService } from "./backend/Presence.js"
export { Names, type NamesService, type NameOwner } from "./backend/Names.js"
export { Sessions, type SessionsService, type SessionRecord } from "./backend/Sessions.js"
export { Readiness } from "./backend/Readiness.js"
export { BackendError } from "./backend/BackendError.js"
export {
  ChatClient,
  ChatClientError,
  reconnectSchedule,
  type ChatClientOptions,
  type ChatClientService,
  type ChatEvent,
  type ConnectionEvent
} from "./client/ChatClient.js"
export * as ReconnectPolicy from "./client/ReconnectPolicy.js"
