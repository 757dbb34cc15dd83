// Gossipsub as js-libp2p-node runs it: js-libp2p's @libp2p/gossipsub with the tuning the
// command line asks for, an optional spec message-id function, and an optional trace of the
// control messages it receives and sends (for the mixed-network test).
import { gossipsub } from '@libp2p/gossipsub'
import { emit } from './output.js'

/**
 * The message id of the pubsub spec and go-libp2p-pubsub (lp2p's default): the bytes of the
 * `from` peer id followed by the 8-byte big-endian seqno.
 *
 * js-libp2p's own default (msgIdFnStrictSign) differs: it uses the protobuf of the author's
 * public key instead of the peer id bytes, so for an Ed25519 author its ids lack the two-byte
 * identity-multihash prefix (0x00 0x24) that go/lp2p ids carry.
 */
export function specMessageId (msg) {
  if (msg.type !== 'signed') throw new Error('spec message id needs a signed message')
  const from = msg.from.toMultihash().bytes
  const id = new Uint8Array(from.byteLength + 8)
  id.set(from, 0)
  new DataView(id.buffer).setBigUint64(from.byteLength, BigInt.asUintN(64, msg.sequenceNumber), false)
  return id
}

/** The gossipsub service factory for the given options (`opts.gossip`). */
export function gossipService (opts) {
  const g = opts.gossip
  const init = {
    // Publishing to a topic nobody else joined yet is not an error for the node (lp2p-node
    // and rust-libp2p-node behave the same); the listener may publish before anyone joined.
    allowPublishToZeroTopicPeers: true,
    fallbackToFloodsub: true,
    emitSelf: false,
    doPX: g.px
  }
  if (g.d != null) init.D = g.d
  if (g.dlo != null) init.Dlo = g.dlo
  if (g.dhi != null) init.Dhi = g.dhi
  if (g.d != null) {
    // Dscore and Dout must stay within the mesh degree bounds when the degree is lowered.
    init.Dscore = Math.min(g.d, 4)
    init.Dout = Math.max(0, Math.min(Math.floor(g.d / 2), (g.dlo ?? 1) - 1))
  }
  if (g.pruneBackoff != null) init.pruneBackoff = g.pruneBackoff * 1000
  if (g.historyLength != null) init.mcacheLength = g.historyLength
  if (g.historyGossip != null) init.mcacheGossip = g.historyGossip
  if (g.heartbeatMs != null) init.heartbeatInterval = g.heartbeatMs
  if (g.messageId === 'spec') init.msgIdFn = specMessageId
  return gossipsub(init)
}

/** Message ids as hex, as the tests compare them. */
export function hexIds (ids) {
  return (ids ?? []).map(id => Buffer.from(id).toString('hex'))
}

function controlEvents (dir, peer, control) {
  if (control == null) return
  for (const ihave of control.ihave ?? []) {
    emit({ event: 'control', kind: 'ihave', dir, peer, topic: ihave.topicID, ids: hexIds(ihave.messageIDs) })
  }
  for (const iwant of control.iwant ?? []) {
    emit({ event: 'control', kind: 'iwant', dir, peer, ids: hexIds(iwant.messageIDs) })
  }
  for (const graft of control.graft ?? []) {
    emit({ event: 'control', kind: 'graft', dir, peer, topic: graft.topicID })
  }
  for (const prune of control.prune ?? []) {
    const px = prune.peers ?? []
    emit({
      event: 'control',
      kind: 'prune',
      dir,
      peer,
      topic: prune.topicID,
      backoff: prune.backoff == null ? null : Number(prune.backoff),
      px: px.length,
      px_records: px.filter(p => p.signedPeerRecord != null && p.signedPeerRecord.length > 0).length
    })
  }
  for (const idontwant of control.idontwant ?? []) {
    emit({ event: 'control', kind: 'idontwant', dir, peer, ids: hexIds(idontwant.messageIDs) })
  }
}

/**
 * Prints a `control` event for every control message the gossipsub instance receives
 * (dir "in") or sends (dir "out"), and a `graft-in-backoff` event when a peer GRAFTs while we
 * still back off from it (a peer that does not honour our PRUNE backoff).
 */
export function traceControl (pubsub) {
  const receive = pubsub.handleControlMessage.bind(pubsub)
  pubsub.handleControlMessage = async (id, control) => {
    const now = Date.now()
    for (const graft of control?.graft ?? []) {
      const expiry = pubsub.backoff.get(graft.topicID)?.get(id)
      if (typeof expiry === 'number' && now < expiry) {
        emit({ event: 'control', kind: 'graft-in-backoff', dir: 'in', peer: id, topic: graft.topicID, early_ms: expiry - now })
      }
    }
    controlEvents('in', id, control)
    return receive(id, control)
  }
  const send = pubsub.sendRpc.bind(pubsub)
  pubsub.sendRpc = (id, rpc) => {
    // sendRpc piggybacks pending control onto `rpc` in place: look after it ran.
    const sent = send(id, rpc)
    if (sent) controlEvents('out', id, rpc.control)
    return sent
  }
}
