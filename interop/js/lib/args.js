// The lp2p-node command line (NODE-CLI.md), as far as js-libp2p-node implements it, plus the
// gossipsub tuning options the mixed-network test gives to the reference peers.
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { putArgument } from './kad.js'

/** Thrown for a bad command line: ends in one `error` event and exit 2. */
export class UsageError extends Error {}

const COMMANDS = ['listen', 'dial', 'perf']

function number (flag, text) {
  const n = Number(text)
  if (text == null || text === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`${flag} needs a non-negative number, got ${text}`)
  }
  return n
}

function integer (flag, text) {
  const n = number(flag, text)
  if (!Number.isInteger(n)) throw new UsageError(`${flag} needs a whole number, got ${text}`)
  return n
}

function address (flag, text) {
  try {
    return multiaddr(text)
  } catch (err) {
    throw new UsageError(`${flag}: ${text} is not a valid multiaddr: ${err.message}`)
  }
}

/** Parses `argv` (without node and the script) into the options object. */
export function parse (argv) {
  const [command, ...rest] = argv
  if (!COMMANDS.includes(command)) {
    throw new UsageError(`unknown command ${command ?? '(none)'} (js-libp2p-node speaks ${COMMANDS.join(', ')})`)
  }
  const opts = {
    command,
    addrs: [],
    connect: [],
    topics: [],
    security: 'noise',
    muxer: 'yamux',
    only: false,
    bare: false,
    seed: undefined,
    timeout: undefined,
    ping: undefined,
    echo: undefined,
    identify: false,
    publish: undefined,
    expectMessages: undefined,
    upload: 0,
    download: 0,
    kad: undefined,
    kadOps: [],
    relayService: false,
    relays: [],
    relayDataLimit: undefined,
    relayDurationLimit: undefined,
    gossip: {
      // Mixed-network tuning; defaults leave js-libp2p's own defaults in place.
      d: undefined,
      dlo: undefined,
      dhi: undefined,
      px: false,
      pruneBackoff: undefined,
      historyLength: undefined,
      historyGossip: undefined,
      heartbeatMs: undefined,
      messageId: 'native',
      traceControl: false
    }
  }
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i]
    const value = () => {
      i++
      if (i >= rest.length) throw new UsageError(`${flag} needs a value`)
      return rest[i]
    }
    switch (flag) {
      case '--addr': opts.addrs.push(address(flag, value())); break
      case '--connect': opts.connect.push(address(flag, value())); break
      case '--topic': opts.topics.push(value()); break
      case '--security': {
        const v = value()
        if (v !== 'noise' && v !== 'plaintext' && v !== 'tls') throw new UsageError(`unknown security \`${v}\` (noise, plaintext or tls)`)
        opts.security = v
        break
      }
      case '--muxer': {
        const v = value()
        if (v !== 'yamux' && v !== 'mplex') throw new UsageError(`unknown muxer \`${v}\` (yamux or mplex)`)
        opts.muxer = v
        break
      }
      case '--only': opts.only = true; break
      case '--bare': opts.bare = true; break
      case '--json': break
      case '--key-seed': opts.seed = BigInt(integer(flag, value())); break
      case '--timeout': opts.timeout = number(flag, value()); break
      case '--ping': opts.ping = integer(flag, value()); break
      case '--echo': opts.echo = value(); break
      case '--identify': opts.identify = true; break
      case '--publish': opts.publish = value(); break
      case '--expect-messages': opts.expectMessages = integer(flag, value()); break
      case '--upload-bytes': opts.upload = integer(flag, value()); break
      case '--download-bytes': opts.download = integer(flag, value()); break
      case '--kad': {
        const v = value()
        if (v !== 'server' && v !== 'client') throw new UsageError(`unknown kad mode \`${v}\`; use server or client`)
        opts.kad = v
        break
      }
      case '--kad-find-peer': {
        const v = value()
        try {
          peerIdFromString(v)
        } catch (err) {
          throw new UsageError(`--kad-find-peer: \`${v}\` is not a peer id (${err.message})`)
        }
        opts.kadOps.push({ op: 'find-peer', key: v })
        break
      }
      case '--kad-put': {
        const op = putArgument(value())
        if (op == null) throw new UsageError('--kad-put needs KEY=VALUE')
        opts.kadOps.push(op)
        break
      }
      case '--kad-get': opts.kadOps.push({ op: 'get', key: value() }); break
      case '--kad-provide': opts.kadOps.push({ op: 'provide', key: value() }); break
      case '--kad-find-providers': opts.kadOps.push({ op: 'find-providers', key: value() }); break
      case '--relay-service': opts.relayService = true; break
      case '--relay': opts.relays.push(address(flag, value())); break
      // Relay limits (not part of the lp2p-node contract; the relay-limit tests use them).
      case '--relay-data-limit': opts.relayDataLimit = integer(flag, value()); break
      case '--relay-duration-limit': opts.relayDurationLimit = integer(flag, value()); break
      // Gossipsub tuning (not part of the lp2p-node contract; used by the mixed network).
      case '--mesh-d': opts.gossip.d = integer(flag, value()); break
      case '--mesh-dlo': opts.gossip.dlo = integer(flag, value()); break
      case '--mesh-dhi': opts.gossip.dhi = integer(flag, value()); break
      case '--px': opts.gossip.px = true; break
      case '--prune-backoff': opts.gossip.pruneBackoff = integer(flag, value()); break
      case '--history-length': opts.gossip.historyLength = integer(flag, value()); break
      case '--history-gossip': opts.gossip.historyGossip = integer(flag, value()); break
      case '--heartbeat-ms': opts.gossip.heartbeatMs = integer(flag, value()); break
      case '--message-id': {
        const v = value()
        if (v !== 'native' && v !== 'spec') throw new UsageError(`unknown --message-id \`${v}\` (native or spec)`)
        opts.gossip.messageId = v
        break
      }
      case '--trace-control': opts.gossip.traceControl = true; break
      default: throw new UsageError(`unknown option ${flag}`)
    }
  }
  if (opts.command === 'listen' && opts.addrs.length === 0) {
    throw new UsageError('listen needs --addr')
  }
  if (opts.command !== 'listen' && opts.addrs.length !== 1) {
    throw new UsageError(`${opts.command} needs exactly one --addr`)
  }
  if (opts.kadOps.length > 0 && opts.command !== 'dial') {
    throw new UsageError(`the --kad-* operations apply to dial (listen reads them from stdin), not to ${opts.command}`)
  }
  if (opts.kad != null && opts.command === 'perf') {
    throw new UsageError('option --kad does not apply to perf')
  }
  // A Kademlia operation implies a client, as lp2p-node does.
  if (opts.kadOps.length > 0 && opts.kad == null) opts.kad = 'client'
  if (opts.kad != null && opts.bare) {
    throw new UsageError('--kad does not go with --bare (ping, echo and perf only)')
  }
  if (opts.relayService && opts.command === 'perf') {
    throw new UsageError('option --relay-service does not apply to perf')
  }
  if (opts.relays.length > 0 && opts.command !== 'listen') {
    throw new UsageError(`option --relay applies to listen, not to ${opts.command}`)
  }
  for (const relay of opts.relays) {
    if (relay.getComponents().findLast(c => c.name === 'p2p') == null || relay.toString().includes('/p2p-circuit')) {
      throw new UsageError(`--relay: ${relay} must be a relay's address ending in /p2p/<relay id>`)
    }
  }
  if ((opts.relayDataLimit != null || opts.relayDurationLimit != null) && !opts.relayService) {
    throw new UsageError('--relay-data-limit and --relay-duration-limit need --relay-service')
  }
  if (opts.bare && (opts.relayService || opts.relays.length > 0 ||
      [...opts.addrs, ...opts.connect].some(a => a.toString().includes('/p2p-circuit')))) {
    // @libp2p/circuit-relay-v2 depends on identify, which --bare leaves out.
    throw new UsageError('circuit relay (--relay-service, --relay, /p2p-circuit) does not go with --bare')
  }
  if (opts.publish != null && opts.topics.length !== 1) {
    throw new UsageError('--publish needs exactly one --topic')
  }
  if (opts.expectMessages != null && opts.topics.length === 0) {
    throw new UsageError('--expect-messages needs --topic')
  }
  return opts
}
