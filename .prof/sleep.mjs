import { Effect } from "effect"
const N = 1000
for (const ms of [0, 1, 5]) {
  const t0 = process.cpuUsage(), w0 = Date.now()
  await Effect.runPromise(Effect.forEach(Array.from({ length: N }), () => Effect.async((r) => { setTimeout(() => r(Effect.void), ms) }), { discard: true }))
  const c = process.cpuUsage(t0); console.log(`timeout ${ms}: ${((c.user + c.system) / N).toFixed(1)} µs cpu/iter, wall ${((Date.now() - w0) / N).toFixed(2)} ms`)
  const t1 = process.cpuUsage()
  for (let i = 0; i < N; i++) await new Promise((r) => setTimeout(r, ms))
  const c1 = process.cpuUsage(t1); console.log(`  plain promise: ${((c1.user + c1.system) / N).toFixed(1)} µs cpu/iter`)
}
