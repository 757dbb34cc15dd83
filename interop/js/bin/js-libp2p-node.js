#!/usr/bin/env node
// js-libp2p-node: the lp2p-node command-line contract (NODE-CLI.md) implemented with
// js-libp2p 3, so the interop matrix can pair lp2p-node with js-libp2p process against
// process. Supported: listen, dial and perf with --security noise|plaintext|tls,
// --muxer yamux|mplex [--only], --key-seed, --timeout, --bare, and the same JSON-line events.
// Served: identify (and push), ping, gossipsub (floodsub fallback) on every --topic,
// Kademlia (/ipfs/kad/1.0.0) with --kad server|client and the --kad-* operations,
// circuit relay v2 (--relay-service, listen --relay, dialing /p2p-circuit addresses),
// /echo/1.0.0 and /perf/1.0.0.
import '../lib/polyfill.js'
import { parse, UsageError } from '../lib/args.js'
import { dial, listen, perf } from '../lib/commands.js'
import { fail } from '../lib/output.js'

/** Default hard stop of dial and perf, as lp2p-node's. */
const DEFAULT_CLIENT_TIMEOUT_S = 30

async function main () {
  let opts
  try {
    opts = parse(process.argv.slice(2))
  } catch (err) {
    return fail(err.message, err instanceof UsageError ? 2 : 1)
  }
  const run = { listen, dial, perf }[opts.command]
  if (opts.command === 'listen') {
    await run(opts)
    process.exit(0)
  }
  const limit = opts.timeout ?? DEFAULT_CLIENT_TIMEOUT_S
  const timer = setTimeout(() => {
    void fail(`${opts.command} did not finish within --timeout ${limit} s`)
  }, limit * 1000)
  await run(opts)
  clearTimeout(timer)
  process.exit(0)
}

main().catch(err => fail(err))
