// The browser page: dials the lp2p-node address in the URL's hash, pings it and runs an
// echo, and leaves the outcome in window.lp2pResult for the test driver.
import { startNode, exercise } from './peer.js'

async function main () {
  const addr = decodeURIComponent(location.hash.slice(1))
  const log = (line) => {
    const p = document.createElement('pre')
    p.textContent = line
    document.body.appendChild(p)
  }
  log(`dialing ${addr}`)
  const node = await startNode()
  try {
    const result = await exercise(node, addr, { text: 'hello from a browser' })
    log(`ok: ${JSON.stringify(result)}`)
    window.lp2pResult = { ok: true, ...result, userAgent: navigator.userAgent }
  } finally {
    await node.stop()
  }
}

function describe (err) {
  const inner = Array.isArray(err?.errors) ? ` [${err.errors.map(describe).join('; ')}]` : ''
  return `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}${inner}`
}

main().catch((err) => {
  window.lp2pResult = { ok: false, error: describe(err) }
})
