/**
 * `/metrics` in Prometheus text format: Effect's metric registry read through `@effect/opentelemetry`'s metric
 * producer by OpenTelemetry's Prometheus exporter (kept from starting a server of its own: the chat server's port
 * serves it). Everything in the registry is exported, so an embedding application's own Effect metrics appear
 * beside effect-chat's.
 *
 * A separate layer, composed by `dist/server.js` (and by an embedding application that wants the endpoint): the
 * library's root keeps no OpenTelemetry code unless it is asked for.
 */
import * as Metrics from "@effect/opentelemetry/Metrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { Effect, Layer } from "effect"
import { MetricsScrape } from "./MetricsScrape.js"

/** `MetricsScrape` by OpenTelemetry's Prometheus exporter over Effect's metric registry. */
export const layer = (options: { readonly serviceName?: string } = {}) => {
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const serializer = new PrometheusSerializer()
  return Layer.merge(
    Layer.succeed(MetricsScrape, {
      scrape: Effect.promise(() => exporter.collect()).pipe(
        Effect.map(({ resourceMetrics }) => serializer.serialize(resourceMetrics))
      )
    }),
    Metrics.layer(() => exporter)
  ).pipe(Layer.provide(Resource.layer({ serviceName: options.serviceName ?? "effect-chat" })))
}
