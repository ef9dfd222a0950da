/**
 * What the server counts, as Effect `Metric`s: recorded into Effect's global metric registry, so an embedding
 * application's own telemetry (an OpenTelemetry exporter, `Metric.snapshot`) sees them as it sees its own, and
 * `/metrics` exports them in Prometheus text (`PrometheusMetrics`). Names carry the `effect_chat_` prefix.
 *
 * On the hot path (a delivery, a socket write) they are updated with `unsafeUpdate` and label arrays built once:
 * Effect caches the metric's hook per label array, so an update is a map lookup and an add — no Effect, no
 * allocation — which is what keeps them out of the fan-out benchmark's figures.
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"

const counter = (name: string, description: string) =>
  Metric.counter(`effect_chat_${name}`, { description, incremental: true })

export const connections = Metric.gauge("effect_chat_connections", {
  description: "open WebSocket connections, by dialect"
})
export const users = Metric.gauge("effect_chat_users", { description: "users connected (the whole cluster)" })
export const rooms = Metric.gauge("effect_chat_rooms", { description: "rooms with members on this node" })
export const published = counter("messages_published_total", "room messages published by this node")
export const deliveries = counter("deliveries_total", "frames written to room members by this node")
export const bytesOut = counter("bytes_out_total", "bytes written to WebSocket clients of room fan-out")
export const slowConsumerCuts = counter("slow_consumer_cuts_total", "connections closed with 4008 (slow consumer)")
export const closes = counter("closes_total", "connections closed, by close code")
export const rateLimited = counter("rate_limited_total", "requests refused with rate_limited")
export const authRefusals = counter("auth_refusals_total", "connections refused by identity (unauthorized)")
export const resumes = counter("resumes_total", "resume attempts, by whether the session was resumed")
export const hookFailures = counter("hook_failures_total", "observing hooks that failed")
export const backendErrors = counter("backend_errors_total", "requests answered unavailable (a backend failed)")

/** Milliseconds, from sub-millisecond to 10 s. */
const latencyBoundaries = MetricBoundaries.exponential({ start: 0.25, factor: 2, count: 16 })

export const fanoutLatency = Metric.histogram(
  "effect_chat_publish_to_fanout_ms",
  latencyBoundaries,
  "time from a message's publish to its write to this node's room members, in ms"
)
export const joinTime = Metric.histogram(
  "effect_chat_join_ms",
  latencyBoundaries,
  "time a join takes until members and history are written, in ms"
)

const label = (key: string, value: string): ReadonlyArray<MetricLabel.MetricLabel> => [MetricLabel.make(key, value)]

export const JSON_DIALECT = label("dialect", "json")
export const PLAIN_DIALECT = label("dialect", "plain")
export const RESUMED = label("resumed", "true")
export const NOT_RESUMED = label("resumed", "false")
export const NONE: ReadonlyArray<MetricLabel.MetricLabel> = []

const codeLabels = new Map<number, ReadonlyArray<MetricLabel.MetricLabel>>()

/** The label array of a close code, one per code (the metric's hook is cached per array). */
export const codeLabel = (code: number): ReadonlyArray<MetricLabel.MetricLabel> => {
  let found = codeLabels.get(code)
  if (found === undefined) codeLabels.set(code, (found = label("code", String(code))))
  return found
}

/** Adds `n` to a counter (or a gauge) synchronously, for the hot path. */
export const add = (
  metric: Metric.Metric<any, number, any>,
  n: number,
  labels: ReadonlyArray<MetricLabel.MetricLabel> = NONE
): void => metric.unsafeUpdate(n, labels)

/** Records one sample of a histogram. */
export const sample = (metric: Metric.Metric.Histogram<number>, value: number): void => metric.unsafeUpdate(value, NONE)

/** Moves a gauge by `delta` (a gauge's update sets it; its modify adds). */
export const move = (metric: Metric.Metric.Gauge<number>, delta: number, labels = NONE): void =>
  metric.unsafeModify(delta, labels)

/** Sets a gauge. */
export const set = (metric: Metric.Metric.Gauge<number>, value: number, labels = NONE): void =>
  metric.unsafeUpdate(value, labels)

/**
 * Brings every metric into the registry at zero, so a scrape lists them before anything happened (a Prometheus
 * `rate()` needs the series to exist before its first increase).
 */
export const registerAll = (): void => {
  for (const metric of [
    published,
    deliveries,
    bytesOut,
    slowConsumerCuts,
    rateLimited,
    authRefusals,
    hookFailures,
    backendErrors,
    users,
    rooms,
    fanoutLatency,
    joinTime
  ]) {
    metric.unsafeValue(NONE)
  }
  for (const labels of [JSON_DIALECT, PLAIN_DIALECT]) connections.unsafeValue(labels)
  for (const labels of [RESUMED, NOT_RESUMED]) resumes.unsafeValue(labels)
}
