// The lp2p-node command line (NODE-CLI.md), as far as js-libp2p-node implements it, plus the
// gossipsub tuning options the mixed-network test gives to the reference peers.
import { multiaddr } from '@multiformats/multiaddr'

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
        if (v !== 'noise' && v !== 'plaintext') throw new UsageError(`unknown security \`${v}\` (noise or plaintext)`)
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
  if (opts.publish != null && opts.topics.length !== 1) {
    throw new UsageError('--publish needs exactly one --topic')
  }
  if (opts.expectMessages != null && opts.topics.length === 0) {
    throw new UsageError('--expect-messages needs --topic')
  }
  return opts
}
