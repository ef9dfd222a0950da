/**
 * What `/metrics` answers with, when an exporter is composed (`PrometheusMetrics.layer`): the registry's current
 * values as Prometheus text. Its own module, free of OpenTelemetry, so the chat server can look for it without
 * loading the exporter.
 */
import { Context, type Effect } from "effect"

export class MetricsScrape extends Context.Tag("effect-chat/MetricsScrape")<
  MetricsScrape,
  {
    /** The metrics in the Prometheus text exposition format. */
    readonly scrape: Effect.Effect<string>
  }
>() {}
