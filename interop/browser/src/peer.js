// One js-libp2p 3.x node (WebSockets + noise + yamux + ping + an /echo/1.0.0 handler),
// shared by the Node.js runner and the browser page.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

export const ECHO = '/echo/1.0.0'

/** Starts a node; `listen` is a list of multiaddrs (Node.js only). */
export async function startNode ({ listen = [], https } = {}) {
  const node = await createLibp2p({
    addresses: { listen },
    transports: [webSockets(https ? { https } : {})],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { ping: ping() },
    // Loopback addresses are what these tests dial.
    connectionGater: { denyDialMultiaddr: () => false }
  })
  await node.handle(ECHO, async (stream) => {
    for await (const chunk of stream) {
      stream.send(chunk.subarray ? chunk.subarray() : chunk)
    }
    await stream.close()
  }, { runOnLimitedConnection: true })
  await node.start()
  return node
}

/** Dials `addr`, pings it `pings` times, and runs one echo exchange of `text`. */
export async function exercise (node, addr, { pings = 3, text = 'hello from js-libp2p' } = {}) {
  const ma = multiaddr(addr)
  const rtts = []
  for (let i = 0; i < pings; i++) {
    rtts.push(await node.services.ping.ping(ma))
  }
  const stream = await node.dialProtocol(ma, ECHO)
  const sent = new TextEncoder().encode(text)
  stream.send(sent)
  await stream.close()
  const parts = []
  for await (const chunk of stream) {
    parts.push(chunk.subarray ? chunk.subarray() : chunk)
  }
  const back = new TextDecoder().decode(concat(parts))
  if (back !== text) {
    throw new Error(`echo returned ${JSON.stringify(back)} instead of ${JSON.stringify(text)}`)
  }
  const conns = node.getConnections()
  return {
    rtts,
    echoed: back.length,
    remoteAddr: conns.length > 0 ? conns[0].remoteAddr.toString() : null
  }
}

function concat (parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
