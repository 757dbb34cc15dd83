// js-libp2p 3.x (@libp2p/websockets) against lp2p-node over WebSocket, in Node.js and in a
// headless Chromium, both dial directions where the platform allows:
//
//   node.js js-libp2p  -> lp2p-node  /ws       ping x3 + echo
//   node.js js-libp2p  -> lp2p-node  /tls/ws   ping x3 + echo (lp2p's self-signed certificate)
//   lp2p-node          -> node.js js-libp2p /ws   lp2p-node dial --ping 3 --echo
//   chromium js-libp2p -> lp2p-node  /ws       ping x3 + echo (the page in dist/, built by build.mjs)
//
// LP2P_NODE names the lp2p-node binary (default: ../../target/debug/lp2p-node), CHROMIUM the
// browser (default: /usr/bin/chromium). Prints a table and "N passed, M failed"; exits
// non-zero if any case failed. js-libp2p dials with the global WebSocket, built into Node
// from 22; on Node 20 this script re-runs itself with --experimental-websocket.
import { spawn, spawnSync, execFile } from 'node:child_process'
import { createServer } from 'node:http'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

if (typeof globalThis.WebSocket === 'undefined') {
  const again = spawnSync(process.execPath, ['--experimental-websocket', ...process.argv.slice(1)], { stdio: 'inherit' })
  process.exit(again.status ?? 1)
}

const here = dirname(fileURLToPath(import.meta.url))
const LP2P_NODE = process.env.LP2P_NODE ?? join(here, '..', '..', 'target', 'debug', 'lp2p-node')
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
// Generous: CI machines are slow and loaded; these only stop a hang.
const CASE_TIMEOUT_MS = 90_000

// Node 20 lacks Promise.withResolvers (Node 22+, and every current browser), which
// js-libp2p 3.x uses; the standard polyfill fills in for it on Node 20 only.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const { startNode, exercise } = await import('./src/peer.js')

function withTimeout (promise, what) {
  let timer
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Starts `lp2p-node listen` and resolves with the process and its listening event. */
function startLp2pListener (addrs) {
  const args = ['listen', '--timeout', '300']
  for (const a of addrs) args.push('--addr', a)
  const child = spawn(LP2P_NODE, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const events = []
  const lines = createInterface({ input: child.stdout })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    lines.on('line', (line) => {
      let event
      try { event = JSON.parse(line) } catch { return }
      events.push(event)
      if (event.event === 'listening') resolve({ child, listening: event, events })
      if (event.event === 'error') reject(new Error(`lp2p-node: ${event.what}`))
    })
  })
}

function runLp2pDial (addr, extra) {
  return new Promise((resolve, reject) => {
    execFile(LP2P_NODE, ['dial', '--addr', addr, ...extra, '--timeout', '60'], (err, stdout, stderr) => {
      const events = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))
      const error = events.find((e) => e.event === 'error')
      if (err || error) {
        reject(new Error(error ? error.what : `${err.message} ${stderr}`))
      } else {
        resolve(events)
      }
    })
  })
}

function serveDist () {
  const types = { '.html': 'text/html', '.js': 'text/javascript' }
  const server = createServer((req, res) => {
    const name = new URL(req.url, 'http://x').pathname.replace(/^\/+/, '') || 'index.html'
    if (!/^[a-z.]+$/.test(name)) { res.writeHead(404).end(); return }
    try {
      const body = readFileSync(join(here, 'dist', name))
      res.writeHead(200, { 'content-type': types[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream' })
      res.end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

async function browserCase (wsAddr) {
  const { chromium } = await import('playwright-core')
  const profile = mkdtempSync(join(tmpdir(), 'lp2p-chromium-'))
  const server = await serveDist()
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'
    ]
  })
  try {
    const page = await context.newPage()
    const console = []
    page.on('console', (m) => console.push(m.text()))
    page.on('pageerror', (e) => console.push(`page error: ${e.message}`))
    const url = `http://127.0.0.1:${server.address().port}/index.html#${encodeURIComponent(wsAddr)}`
    await page.goto(url)
    await page.waitForFunction(() => window.lp2pResult !== undefined, null, { timeout: CASE_TIMEOUT_MS })
    const result = await page.evaluate(() => window.lp2pResult)
    if (!result.ok) throw new Error(`${result.error} (console: ${console.slice(-5).join(' | ')})`)
    return `${result.rtts.length} pings, echo ${result.echoed} B (${result.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? 'chromium'})`
  } finally {
    await context.close()
    server.close()
    rmSync(profile, { recursive: true, force: true })
  }
}

const results = []
async function runCase (name, fn) {
  try {
    const detail = await withTimeout(fn(), name)
    results.push({ name, ok: true, detail })
  } catch (err) {
    results.push({ name, ok: false, detail: err.message })
  }
}

const lp2p = await startLp2pListener(['/ip4/127.0.0.1/tcp/0/ws', '/ip4/127.0.0.1/tcp/0/tls/ws'])
const wsAddr = lp2p.listening.addrs.find((a) => a.includes('/ws/') && !a.includes('/tls/'))
const tlsAddr = lp2p.listening.addrs.find((a) => a.includes('/tls/ws/'))

await runCase('node.js js-libp2p -> lp2p-node /ws', async () => {
  const node = await startNode()
  try {
    const r = await exercise(node, wsAddr)
    return `${r.rtts.length} pings, echo ${r.echoed} B`
  } finally { await node.stop() }
})

await runCase('node.js js-libp2p -> lp2p-node /tls/ws', async () => {
  // lp2p-node's certificate is self-signed: accept it for this case only.
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
  const node = await startNode()
  try {
    const r = await exercise(node, tlsAddr)
    return `${r.rtts.length} pings, echo ${r.echoed} B`
  } finally {
    await node.stop()
    delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
  }
})

await runCase('lp2p-node -> node.js js-libp2p /ws', async () => {
  const node = await startNode({ listen: ['/ip4/127.0.0.1/tcp/0/ws'] })
  try {
    const addr = node.getMultiaddrs().map((a) => a.toString()).find((a) => a.includes('/ws'))
    const events = await runLp2pDial(addr, ['--ping', '3', '--echo', 'hello from lp2p'])
    const pings = events.filter((e) => e.event === 'ping').length
    const echo = events.find((e) => e.event === 'echo')
    if (pings !== 3 || !echo?.ok) throw new Error(`events: ${JSON.stringify(events)}`)
    return `${pings} pings, echo ${echo.bytes} B`
  } finally { await node.stop() }
})

await runCase('chromium js-libp2p -> lp2p-node /ws', async () => {
  try {
    return await browserCase(wsAddr)
  } catch (err) {
    const state = lp2p.child.exitCode === null ? 'running' : `exited with ${lp2p.child.exitCode}`
    throw new Error(`${err.message} (dialed ${wsAddr}; lp2p-node ${state})`)
  }
})

lp2p.child.kill()
const inbound = lp2p.events.filter((e) => e.event === 'connected' && e.dir === 'in').length

console.log('\njs-libp2p 3.x over WebSocket against lp2p-node')
for (const r of results) {
  console.log(`${r.ok ? 'pass' : 'FAIL'}  ${r.name.padEnd(42)} ${r.detail}`)
}
console.log(`(lp2p-node saw ${inbound} inbound connections)`)
const passed = results.filter((r) => r.ok).length
console.log(`${passed} passed, ${results.length - passed} failed`)
process.exit(passed === results.length ? 0 : 1)
