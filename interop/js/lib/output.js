// One JSON object per line on stdout, as the lp2p-node contract says; logs go to stderr.

/** Prints one event line. */
export function emit (event) {
  process.stdout.write(JSON.stringify(event) + '\n')
}

/** Prints an `error` event and exits non-zero once stdout is flushed. */
export function fail (what, code = 1) {
  emit({ event: 'error', what: String(what?.message ?? what) })
  process.stdout.write('', () => process.exit(code))
  // Never resolves: the process is exiting.
  return new Promise(() => {})
}

/** Logs to stderr when LP2P_JS_DEBUG is set. */
export function debug (...args) {
  if (process.env.LP2P_JS_DEBUG != null) {
    console.error(new Date().toISOString(), ...args)
  }
}
