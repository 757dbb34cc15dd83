// The subcommands: listen, dial and perf, with the events of the lp2p-node contract.
import readline from 'node:readline'
import { peerIdFromString } from '@libp2p/peer-id'
import { parseLine as parseKadLine, runOp as runKadOp } from './kad.js'
import { createNode } from './node.js'
import { circuitListenAddrs } from './relay.js'
import { debug, emit, fail } from './output.js'
import { echoClient, perfClient } from './streams.js'

/** How long `dial --publish` waits for the remote to join the mesh, as lp2p-node. */
const MESH_WAIT_MS = 5000
/** How often the mesh is looked at while waiting. */
const MESH_POLL_MS = 50
/** First and largest delay before a `--connect` peer is redialed. */
const REDIAL_MIN_MS = 500
const REDIAL_MAX_MS = 10000

const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

function peerOf (addr) {
  const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
  if (id == null) throw new Error(`the address ${addr} must end in /p2p/<peer id>`)
  return peerIdFromString(id)
}

function identifyEvent (info) {
  return {
    event: 'identify',
    peer: info.peerId.toString(),
    agent_version: info.agentVersion ?? '',
    protocol_version: info.protocolVersion ?? '',
    protocols: info.protocols ?? [],
    listen_addrs: (info.listenAddrs ?? []).map(a => a.toString()),
    observed_addr: info.observedAddr?.toString() ?? '',
    signed_peer_record: info.signedPeerRecord != null
  }
}

function messageEvent (msg, msgId) {
  return {
    event: 'message',
    ...(msgId == null ? {} : { id: Buffer.from(msgId, 'base64').toString('hex') }),
    topic: msg.topic,
    from: msg.type === 'signed' ? msg.from.toString() : '',
    data: new TextDecoder().decode(msg.data)
  }
}

/** Publishes `text` on `topic`; a failure is logged, not fatal (as lp2p-node's listen). */
async function publishLine (node, line) {
  const match = /^publish (\S+) (.*)$/.exec(line.trim())
  if (match == null || node.services.pubsub == null) return
  try {
    await node.services.pubsub.publish(match[1], new TextEncoder().encode(match[2]))
  } catch (err) {
    console.error(`publish on ${match[1]} failed: ${err.message}`)
  }
}

/** Dials `addr` now and again whenever the connection to its peer drops, with backoff. */
function keepConnected (node, addr, stopped) {
  const peer = peerOf(addr)
  let delay = REDIAL_MIN_MS
  const attempt = async () => {
    while (!stopped()) {
      try {
        await node.dial(addr)
        delay = REDIAL_MIN_MS
        return
      } catch (err) {
        debug(`dialing ${addr} failed: ${err.message}`)
        await sleep(delay)
        delay = Math.min(delay * 2, REDIAL_MAX_MS)
      }
    }
  }
  node.addEventListener('peer:disconnect', (evt) => {
    if (evt.detail.equals(peer) && !stopped()) void attempt()
  })
  void attempt()
}

/** A `connected` event; a relayed connection (js-libp2p gives it limits) says `limited`. */
function connectedEvent (conn) {
  return {
    event: 'connected',
    peer: conn.remotePeer.toString(),
    dir: conn.direction === 'inbound' ? 'in' : 'out',
    addr: conn.remoteAddr.toString(),
    ...(conn.limits == null ? {} : { limited: true })
  }
}

/** Prints connections, disconnections and identify results as they happen. */
function printConnectionEvents (node) {
  node.addEventListener('connection:open', (evt) => {
    const conn = evt.detail
    emit(connectedEvent(conn))
  })
  node.addEventListener('peer:disconnect', (evt) => {
    emit({ event: 'disconnected', peer: evt.detail.toString() })
  })
  node.addEventListener('peer:identify', (evt) => emit(identifyEvent(evt.detail)))
}

export async function listen (opts) {
  let stopping = false
  // A `--relay` is listened on as `<relay>/p2p-circuit`: js-libp2p reserves a slot there
  // while starting (and fails to start when the relay refuses).
  const node = await createNode(opts, { listen: [...opts.addrs, ...circuitListenAddrs(opts)] })
  printConnectionEvents(node)
  const pubsub = node.services.pubsub
  if (pubsub != null) {
    // gossipsub:message carries the message id (js-libp2p's default string form: base64).
    pubsub.addEventListener('gossipsub:message', (evt) => emit(messageEvent(evt.detail.msg, evt.detail.msgId)))
    for (const topic of opts.topics) pubsub.subscribe(topic)
  } else if (opts.topics.length > 0) {
    return fail('pubsub is not running (--bare serves only ping, echo and perf)')
  }
  emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(a => a.toString()) })
  node.relayEvents.release()
  for (const addr of opts.connect) keepConnected(node, addr, () => stopping)

  const done = new Promise(resolve => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
    if (opts.timeout != null) setTimeout(resolve, opts.timeout * 1000)
    const lines = readline.createInterface({ input: process.stdin, terminal: false })
    // Publish lines are handled in order: each publish finishes before the next starts. A
    // kad line runs at once, on its own: a slow lookup does not hold up the others.
    let queue = Promise.resolve()
    lines.on('line', (line) => {
      const kad = parseKadLine(line)
      if (kad == null) {
        queue = queue.then(() => publishLine(node, line))
      } else if (kad.error != null) {
        emit({ event: 'kad', ok: false, error: kad.error })
      } else {
        const running = runKadOp(node, kad).then(emit)
        queue = queue.then(() => running)
      }
    })
    if (!process.stdin.isTTY) lines.on('close', () => { void queue.then(resolve) })
  })
  await done
  stopping = true
  await node.stop()
}

async function waitFor (what, check, limitMs) {
  const started = Date.now()
  while (!check()) {
    if (limitMs != null && Date.now() - started > limitMs) return false
    await sleep(MESH_POLL_MS)
  }
  return true
}

export async function dial (opts) {
  const addr = opts.addrs[0]
  const peer = peerOf(addr)
  const node = await createNode(opts)
  const identified = new Map()
  node.addEventListener('peer:identify', (evt) => identified.set(evt.detail.peerId.toString(), evt.detail))
  const messages = []
  const pubsub = node.services.pubsub
  const topic = opts.topics[0]
  if (topic != null) {
    if (pubsub == null) return fail('pubsub is not running (--bare serves only ping, echo and perf)')
    pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic !== topic) return
      messages.push(evt.detail)
      emit(messageEvent(evt.detail))
    })
    pubsub.subscribe(topic)
  }
  let connection
  try {
    connection = await node.dial(addr)
  } catch (err) {
    return fail(`cannot connect to ${addr}: ${err.message}`)
  }
  emit({ ...connectedEvent(connection), peer: peer.toString(), addr: addr.toString() })

  if (opts.ping != null) {
    for (let i = 0; i < opts.ping; i++) {
      try {
        const rtt = await node.services.ping.ping(peer)
        emit({ event: 'ping', peer: peer.toString(), rtt_ms: rtt })
      } catch (err) {
        return fail(`ping ${peer} failed: ${err.message}`)
      }
    }
  }
  if (opts.echo != null) {
    try {
      const bytes = await echoClient(connection, opts.echo)
      emit({ event: 'echo', peer: peer.toString(), ok: true, bytes })
    } catch (err) {
      return fail(`echo with ${peer} failed: ${err.message}`)
    }
  }
  if (opts.identify) {
    if (node.services.identify == null) return fail('identify is not running (--bare)')
    await waitFor('identify', () => identified.has(peer.toString()))
    emit(identifyEvent(identified.get(peer.toString())))
  }
  if (opts.publish != null) {
    await waitFor('mesh', () => pubsub.getMeshPeers(topic).includes(peer.toString()), MESH_WAIT_MS)
    try {
      await pubsub.publish(topic, new TextEncoder().encode(opts.publish))
    } catch (err) {
      return fail(`publishing on ${topic} failed: ${err.message}`)
    }
  }
  if (opts.expectMessages != null) {
    await waitFor('messages', () => messages.length >= opts.expectMessages)
  }
  // Kademlia operations in the order given; the dialed peer is the DHT entry point (it joins
  // the routing table once identify shows it serves the protocol).
  for (const op of opts.kadOps) {
    const event = await runKadOp(node, op)
    emit(event)
    if (!event.ok) return fail(`kad ${event.op}: ${event.error}`)
  }
  await node.stop()
}

export async function perf (opts) {
  const addr = opts.addrs[0]
  const started = performance.now()
  const node = await createNode(opts)
  let connection
  try {
    connection = await node.dial(addr)
  } catch (err) {
    return fail(`cannot connect to ${addr}: ${err.message}`)
  }
  let received
  try {
    received = await perfClient(connection, opts.upload, opts.download)
  } catch (err) {
    return fail(`perf failed: ${err.message}`)
  }
  if (received !== opts.download) {
    return fail(`perf: asked for ${opts.download} bytes, received ${received}`)
  }
  emit({ event: 'perf', upload_bytes: opts.upload, download_bytes: received, seconds: (performance.now() - started) / 1000 })
  await node.stop()
}
