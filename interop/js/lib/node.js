// Builds the js-libp2p node from the command-line options.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { mplex } from '@libp2p/mplex'
import { ping } from '@libp2p/ping'
import { plaintext } from '@libp2p/plaintext'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { createLibp2p } from 'libp2p'
import { gossipService, traceControl } from './gossip.js'
import { kadService } from './kad.js'
import { needsRelayTransport, relayClient, relayService, reportRelayService } from './relay.js'
import { serveEcho, servePerf } from './streams.js'

/** The agent version this program announces in identify. */
export const AGENT_VERSION = 'js-libp2p/3.3.11 (lp2p interop)'

/**
 * Connections the node accepts or holds: far above what the tests use, still bounded. The
 * interop matrix dials one listener many times in a row from 127.0.0.1, so js-libp2p's
 * per-host inbound rate limit is raised too.
 */
const MAX_CONNECTIONS = 1024

/**
 * The identity lp2p-node derives from `--key-seed`: the seed as 8 little-endian bytes, then
 * 24 zero bytes, as the Ed25519 secret key.
 */
export async function privateKey (seed) {
  if (seed == null) return generateKeyPair('Ed25519')
  const secret = new Uint8Array(32)
  new DataView(secret.buffer).setBigUint64(0, BigInt.asUintN(64, seed), true)
  return generateKeyPairFromSeed('Ed25519', secret)
}

/**
 * New mplex streams a remote may open per second before @libp2p/mplex 12 aborts the
 * connection. Upstream's default is 5 and, despite its docs ("when maxInboundStreams is
 * hit"), every NEW_STREAM counts: a peer that opens identify, pubsub, identify push and three
 * pings in its first second (lp2p-node `dial --ping 3` does) loses the connection about one
 * run in five. Raised far above what the tests open, still bounded.
 */
const MPLEX_NEW_STREAMS_PER_SECOND = 64

function muxers (opts) {
  const mplexMuxer = () => mplex({ disconnectThreshold: MPLEX_NEW_STREAMS_PER_SECOND })
  const chosen = opts.muxer === 'mplex' ? mplexMuxer() : yamux()
  if (opts.only) return [chosen]
  return [chosen, opts.muxer === 'mplex' ? yamux() : mplexMuxer()]
}

/** The connection encrypter for `--security`: noise (the default), plaintext or TLS 1.3. */
function encrypter (security) {
  switch (security) {
    case 'plaintext': return plaintext()
    case 'tls': return tls()
    default: return noise()
  }
}

/** Creates and starts the node: TCP, the chosen security and muxers, and the services. */
export async function createNode (opts, { listen = [] } = {}) {
  const services = { ping: ping() }
  if (!opts.bare) {
    services.identify = identify()
    services.identifyPush = identifyPush()
    services.pubsub = gossipService(opts)
    // Kademlia needs identify: it adds peers that announce the protocol to its routing table.
    if (opts.kad != null) services.dht = kadService(opts.kad)
    if (opts.relayService) services.relay = relayService(opts)
  }
  const transports = [tcp()]
  // The relay transport only where relays are used (it serves the stop protocol and, on
  // `/p2p-circuit` listen addresses, reserves): the other tests see the node they always had.
  const relay = needsRelayTransport(opts) ? relayClient() : undefined
  if (relay != null) transports.push(relay.transport)
  const node = await createLibp2p({
    privateKey: await privateKey(opts.seed),
    addresses: { listen: listen.map(a => a.toString()) },
    transports,
    connectionEncrypters: [encrypter(opts.security)],
    streamMuxers: muxers(opts),
    nodeInfo: { userAgent: AGENT_VERSION },
    connectionManager: {
      maxConnections: MAX_CONNECTIONS,
      inboundConnectionThreshold: MAX_CONNECTIONS,
      maxIncomingPendingConnections: MAX_CONNECTIONS
    },
    services
  })
  // A node that listens through a relay serves echo over relayed (limited) connections too:
  // that is what it reserved a slot for.
  await serveEcho(node, { limited: opts.relays.length > 0 })
  await servePerf(node)
  if (opts.relayService) reportRelayService(node)
  node.relayEvents = relay ?? { release () {} }
  if (opts.gossip.traceControl && node.services.pubsub != null) {
    traceControl(node.services.pubsub)
  }
  return node
}
