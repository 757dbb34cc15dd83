// js-libp2p 3.x (@libp2p/utils, @libp2p/ping) calls Promise.withResolvers (ES2024), which
// Node 22 has and Node 20 lacks, although their package.json files do not say so. CI has
// Node 20: this standard shape fills the gap. Imported first by the entry point.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
