// The container healthcheck (Dockerfile HEALTHCHECK, compose `healthcheck`): asks this
// node's HTTP admin listener (FLOTILLA_HTTP_LISTENER, as `flotilla server` reads it)
// whether it is ready, and exits 0 (healthy) or 1. Plain Node (global fetch), because the
// slim runtime image has no curl or wget. Usage: node deploy/healthcheck.mjs [/readyz|/healthz]
const path = process.argv[2] ?? "/readyz";
const listener = process.env.FLOTILLA_HTTP_LISTENER ?? "";
const m = /^(\[[0-9a-fA-F:.]+\]|[^:/\s]*):(\d+)$/.exec(listener.trim());
if (!m) {
  console.error(`healthcheck: FLOTILLA_HTTP_LISTENER="${listener}" is not host:port; the node serves no probes`);
  process.exit(1);
}
// A wildcard bind answers on loopback; a specific address only on itself.
const host = m[1] === "" || m[1] === "0.0.0.0" ? "127.0.0.1" : m[1] === "[::]" ? "[::1]" : m[1];
try {
  const res = await fetch(`http://${host}:${m[2]}${path}`, { signal: AbortSignal.timeout(2000) });
  const body = await res.text();
  if (!res.ok) console.error(`healthcheck: ${path} answered ${res.status}: ${body.trim()}`);
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.error(`healthcheck: ${path} failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
