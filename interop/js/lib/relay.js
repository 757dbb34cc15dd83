// Circuit relay v2 (@libp2p/circuit-relay-v2), the NODE-CLI.md "Additions" flags:
// `--relay-service` serves the hop protocol, `--relay <relay addr>/p2p/ID` (listen) reserves a
// slot on that relay and prints a `reservation` event, and any address with `/p2p-circuit`
// is dialed through the relay named in it.
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'
import { emit } from './output.js'

/** Whether any address the command line names goes through a relay. */
export function needsRelayTransport (opts) {
  return opts.relays.length > 0 ||
    [...opts.addrs, ...opts.connect].some(a => a.toString().includes('/p2p-circuit'))
}

/**
 * The relay (hop) service, with the limits given on the command line (`--relay-data-limit
 * BYTES`, `--relay-duration-limit SECS`; @libp2p/circuit-relay-v2's defaults otherwise:
 * 128 KiB and 2 min per circuit, 15 reservations of 2 h).
 */
export function relayService (opts) {
  const reservations = {}
  if (opts.relayDataLimit != null) reservations.defaultDataLimit = BigInt(opts.relayDataLimit)
  // @libp2p/circuit-relay-v2 keeps the duration in milliseconds (and, 4.2.13, sends that
  // number on the wire where the spec says seconds).
  if (opts.relayDurationLimit != null) reservations.defaultDurationLimit = opts.relayDurationLimit * 1000
  return circuitRelayServer({ reservations })
}

function limitJson (limit) {
  if (limit == null) return null
  return {
    duration: limit.duration == null ? null : Number(limit.duration),
    data: limit.data == null ? null : Number(limit.data)
  }
}

/**
 * Prints `{"event":"relay-reservation","peer":...,"addr":...,"expire":UNIX_S,"ok":true|false,
 * "limit":{"duration":N,"data":N}}` for each reservation the relay grants or refuses (the
 * server has no event for it: its store's `reserve` is wrapped). `duration` is the number
 * the relay sends on the wire.
 */
export function reportRelayService (node) {
  const store = node.services.relay?.reservationStore
  if (store == null || typeof store.reserve !== 'function') {
    throw new Error('@libp2p/circuit-relay-v2: the relay server has no reservation store to watch')
  }
  const reserve = store.reserve.bind(store)
  store.reserve = (peer, addr, limit) => {
    const result = reserve(peer, addr, limit)
    emit({
      event: 'relay-reservation',
      peer: peer.toString(),
      addr: addr?.toString() ?? '',
      ok: result.expire != null,
      status: result.status,
      expire: result.expire ?? null,
      limit: limitJson(store.get(peer)?.limit)
    })
    return result
  }
}

/**
 * The circuit relay transport, and what it reports: each reservation it makes (or renews)
 * on a relay becomes a `reservation` event
 * `{"event":"reservation","relay":...,"addrs":[".../p2p-circuit/p2p/ME"],"expire":UNIX_S}`.
 * Events are held until `release()` (after the `listening` line: a test driver waits for
 * that first and would skip anything printed before it).
 */
export function relayClient () {
  const held = []
  let released = false
  const report = (event) => {
    if (released) emit(event)
    else held.push(event)
  }
  const factory = (components) => {
    const transport = circuitRelayTransport()(components)
    const me = components.peerId.toString()
    transport.reservationStore.addEventListener('relay:created-reservation', (evt) => {
      const { relay, details } = evt.detail
      report({
        event: 'reservation',
        relay: relay.toString(),
        addrs: details.reservation.addrs.map(bytes => multiaddr(bytes).encapsulate(`/p2p-circuit/p2p/${me}`).toString()),
        expire: Number(details.reservation.expire)
      })
    })
    transport.reservationStore.addEventListener('relay:removed', (evt) => {
      report({ event: 'reservation-removed', relay: evt.detail.relay.toString() })
    })
    return transport
  }
  return {
    transport: factory,
    release () {
      released = true
      for (const event of held.splice(0)) emit(event)
    }
  }
}

/** The addresses `listen --relay R` listens on: `R/p2p-circuit` (which reserves there). */
export function circuitListenAddrs (opts) {
  return opts.relays.map(r => r.encapsulate('/p2p-circuit'))
}
