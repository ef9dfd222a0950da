const Database = require("/work/main/node_modules/better-sqlite3")
const stats = new Map()
const wrap = (sql, stmt) => {
  for (const m of ["run", "all", "get"]) {
    const orig = stmt[m].bind(stmt)
    stmt[m] = (...args) => { const t = process.hrtime.bigint(); try { return orig(...args) } finally { const s = stats.get(sql) ?? { n: 0, ns: 0n }; s.n++; s.ns += process.hrtime.bigint() - t; stats.set(sql, s) } }
  }
  return stmt
}
const prepare = Database.prototype.prepare
Database.prototype.prepare = function (sql) { return wrap(sql.replace(/\s+/g, " ").slice(0, 90), prepare.call(this, sql)) }
const dump = () => { require("fs").appendFileSync("/tmp/prof/stats.txt", "--- " + process.pid + "\n"); const rows = [...stats].sort((a, b) => Number(b[1].ns - a[1].ns)).slice(0, 15); for (const [sql, s] of rows) require("fs").appendFileSync("/tmp/prof/stats.txt", `${s.n}\t${(Number(s.ns) / 1e6).toFixed(0)}ms\t${(Number(s.ns) / s.n / 1000).toFixed(1)}µs\t${sql}\n`) }
process.on("SIGTERM", () => { dump(); process.exit(0) })
process.on("exit", dump)
