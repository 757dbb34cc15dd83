// Kademlia as js-libp2p-node runs it: @libp2p/kad-dht on /ipfs/kad/1.0.0 in the mode
// `--kad server|client` asks for, and the operations of the lp2p-node contract (dial flags
// and listen stdin lines), each printing one `kad` event.
//
// KEY and VALUE are UTF-8 text; a record's key and value are their bytes, as lp2p-node and
// rust-libp2p-node use them. A provider key is the sha2-256 multihash of KEY's bytes: here the
// CIDv1 (raw codec) around that multihash, since @libp2p/kad-dht provides CIDs and sends
// their multihash on the wire.
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

/** The protocol, set explicitly: it is the Amino DHT's, the one lp2p and rust-libp2p speak. */
export const KAD_PROTOCOL = '/ipfs/kad/1.0.0'

/**
 * The record key namespaces js-libp2p-node accepts besides @libp2p/kad-dht's own `/pk/`.
 *
 * @libp2p/kad-dht validates every record by the namespace of its key (`/NS/...`): a key
 * without one is refused outright ("Record key is missing a namespace") and a namespace
 * without a validator is refused too. lp2p-node and rust-libp2p-node accept any key, so the
 * interop tests use keys in this namespace (`/interop/KEY`) wherever js-libp2p stores or
 * reads them; values there are accepted as they are, like the other two nodes do.
 */
export const INTEROP_NAMESPACES = ['interop']

/**
 * How long one operation may run on a listener before it reports failure: below the 90 s
 * a test waits for a line, far above what a lookup in a test network takes.
 */
const OP_TIMEOUT_MS = 60_000

const acceptAny = () => {}
// Every valid record of these namespaces is as good as another: keep the first one found.
const firstRecord = () => 0

/** The DHT service factory for `--kad server|client`. */
export function kadService (mode) {
  const validators = {}
  const selectors = {}
  for (const ns of INTEROP_NAMESPACES) {
    validators[ns] = acceptAny
    selectors[ns] = firstRecord
  }
  return kadDHT({
    protocol: KAD_PROTOCOL,
    // An explicit mode: left unset, js-libp2p switches to server only on a public address.
    clientMode: mode === 'client',
    // The default mapper drops private addresses (127.0.0.1 included) from every peer record
    // sent and received, so no peer of a loopback test network could be dialed.
    peerInfoMapper: passthroughMapper,
    validators,
    selectors
  })
}

/** The provider CID of KEY (see the module comment). */
export async function providerKey (key) {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(key)))
}

/** Parses `--kad-put KEY=VALUE`. */
export function putArgument (text) {
  const at = text.indexOf('=')
  if (at < 0) return undefined
  return { op: 'put', key: text.slice(0, at), value: text.slice(at + 1) }
}

/**
 * Parses a listen stdin line (`kad-find-peer ID`, `kad-put KEY VALUE`, `kad-get KEY`,
 * `kad-provide KEY`, `kad-find-providers KEY`): `undefined` if it is not one, `{ error }` if it
 * is one but malformed.
 */
export function parseLine (line) {
  const trimmed = line.trim()
  const space = trimmed.indexOf(' ')
  const command = space < 0 ? trimmed : trimmed.slice(0, space)
  const rest = space < 0 ? '' : trimmed.slice(space + 1).trim()
  const ops = { 'kad-find-peer': 'find-peer', 'kad-put': 'put', 'kad-get': 'get', 'kad-provide': 'provide', 'kad-find-providers': 'find-providers' }
  const op = ops[command]
  if (op == null) return undefined
  if (rest === '') return { error: `${command} needs ${op === 'put' ? 'KEY VALUE' : op === 'find-peer' ? 'a peer id' : 'a key'}` }
  if (op === 'put') {
    const gap = rest.indexOf(' ')
    if (gap < 0) return { error: 'kad-put needs KEY VALUE' }
    return { op, key: rest.slice(0, gap), value: rest.slice(gap + 1) }
  }
  if (op === 'find-peer') {
    try {
      peerIdFromString(rest)
    } catch (err) {
      return { error: `kad-find-peer: \`${rest}\` is not a peer id (${err.message})` }
    }
  }
  return { op, key: rest }
}

function withPeer (addr, peer) {
  const text = addr.toString()
  return text.includes('/p2p/') ? text : `${text}/p2p/${peer}`
}

/** Tallies the query events of one operation. */
class Tally {
  queried = 0
  see (event) {
    if (event.name === 'SEND_QUERY') this.queried++
  }
}

async function findPeer (dht, key, signal, tally) {
  const target = peerIdFromString(key)
  let found
  // useCache false: a lookup on the network, never an answer from our own peer store.
  for await (const event of dht.findPeer(target, { signal, useCache: false })) {
    tally.see(event)
    if (event.name === 'FINAL_PEER' && event.peer.id.equals(target) && event.peer.multiaddrs.length > 0) {
      found = event.peer
      break
    }
  }
  if (found == null) throw new Error('the peer was not found')
  return { peers: found.multiaddrs.map(a => withPeer(a, target)) }
}

async function put (dht, key, value, signal, tally) {
  const sent = new TextEncoder().encode(value)
  let stored = 0
  for await (const event of dht.put(new TextEncoder().encode(key), sent, { signal })) {
    tally.see(event)
    // A server answers PUT_VALUE with the record it stored.
    if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE' &&
        event.record != null && Buffer.from(event.record.value).equals(Buffer.from(sent))) {
      stored++
    }
  }
  if (stored === 0) throw new Error('no peer stored the record')
  return { value, stored }
}

async function get (dht, key, signal, tally) {
  let value
  for await (const event of dht.get(new TextEncoder().encode(key), { signal })) {
    tally.see(event)
    // The last VALUE event is the selected record.
    if (event.name === 'VALUE') value = event.value
  }
  if (value == null) throw new Error('no record found')
  return { value: new TextDecoder().decode(value) }
}

async function provide (dht, key, signal, tally) {
  let stored = 0
  for await (const event of dht.provide(await providerKey(key), { signal })) {
    tally.see(event)
    // ADD_PROVIDER has no answer: this is the request having gone out to a closest peer.
    if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') stored++
  }
  if (stored === 0) throw new Error('no peer took the provider record')
  return { stored }
}

async function findProviders (dht, key, signal, tally) {
  const providers = new Set()
  for await (const event of dht.findProviders(await providerKey(key), { signal })) {
    tally.see(event)
    if (event.name === 'PROVIDER') {
      for (const p of event.providers) providers.add(p.id.toString())
    }
  }
  if (providers.size === 0) throw new Error('no provider found')
  return { providers: [...providers] }
}

/**
 * Runs one operation (`{ op, key, value }`) on the node's DHT and returns its `kad` event,
 * `ok` true or false (with `error`).
 */
export async function runOp (node, { op, key, value }, timeoutMs = OP_TIMEOUT_MS) {
  const started = performance.now()
  const dht = node.services.dht
  const tally = new Tally()
  const base = { event: 'kad', op, key }
  if (dht == null) {
    return { ...base, ok: false, error: 'kad is not running (start with --kad server|client)', ms: 0 }
  }
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    let fields
    switch (op) {
      case 'find-peer': fields = await findPeer(dht, key, signal, tally); break
      case 'put': fields = await put(dht, key, value, signal, tally); break
      case 'get': fields = await get(dht, key, signal, tally); break
      case 'provide': fields = await provide(dht, key, signal, tally); break
      case 'find-providers': fields = await findProviders(dht, key, signal, tally); break
      default: throw new Error(`unknown kad operation ${op}`)
    }
    return { ...base, ok: true, ...fields, ms: performance.now() - started, queried: tally.queried }
  } catch (err) {
    const error = signal.aborted ? `did not finish within ${timeoutMs} ms` : err.message
    return { ...base, ok: false, error, ms: performance.now() - started, queried: tally.queried }
  }
}
