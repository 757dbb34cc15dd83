// /echo/1.0.0 and /perf/1.0.0, served and used over js-libp2p 3 message streams.
import { debug } from './output.js'

export const ECHO = '/echo/1.0.0'
export const PERF = '/perf/1.0.0'
/** Bytes per perf write: large enough that the muxer, not this loop, sets the pace. */
const PERF_CHUNK = 64 * 1024

function bytesOf (chunk) {
  return chunk instanceof Uint8Array ? chunk : chunk.subarray()
}

/** Sends `data`, waiting for the stream to drain when its send buffer is full. */
export async function write (stream, data) {
  if (stream.send(data)) return
  await new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
    }
    const onDrain = () => { cleanup(); resolve() }
    const onClose = (evt) => { cleanup(); reject(evt.error ?? new Error('stream closed while writing')) }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
  })
}

/** Reads until the remote closes its write side; the bytes. */
export async function readAll (stream) {
  const chunks = []
  let length = 0
  for await (const chunk of stream) {
    const bytes = bytesOf(chunk)
    chunks.push(bytes)
    length += bytes.byteLength
  }
  const out = new Uint8Array(length)
  let at = 0
  for (const c of chunks) { out.set(c, at); at += c.byteLength }
  return out
}

/** Copies every byte back until the remote closes its write side, then closes. */
export async function serveEcho (node, { limited = false } = {}) {
  await node.handle(ECHO, async (stream) => {
    try {
      for await (const chunk of stream) {
        await write(stream, bytesOf(chunk))
      }
      await stream.close()
    } catch (err) {
      debug('echo stream failed', err)
      stream.abort(err)
    }
  }, { runOnLimitedConnection: limited })
}

/**
 * The perf server: an 8-byte big-endian count the client wants back, then the upload until
 * the client closes its write side; then that many bytes back and close.
 */
export async function servePerf (node) {
  await node.handle(PERF, async (stream) => {
    try {
      const header = new Uint8Array(8)
      let have = 0
      for await (const chunk of stream) {
        const bytes = bytesOf(chunk)
        if (have < 8) {
          const take = Math.min(8 - have, bytes.byteLength)
          header.set(bytes.subarray(0, take), have)
          have += take
        }
      }
      if (have < 8) throw new Error('perf: the client closed before sending its 8-byte header')
      let left = new DataView(header.buffer).getBigUint64(0, false)
      const chunk = new Uint8Array(PERF_CHUNK)
      while (left > 0n) {
        const n = left < BigInt(PERF_CHUNK) ? Number(left) : PERF_CHUNK
        await write(stream, chunk.subarray(0, n))
        left -= BigInt(n)
      }
      await stream.close()
    } catch (err) {
      debug('perf stream failed', err)
      stream.abort(err)
    }
  })
}

/**
 * Writes `text` on a new /echo/1.0.0 stream, closes the write side, reads the echo back. A
 * connection the command line dialed through a relay (limited) is used as it is.
 */
export async function echoClient (connection, text) {
  const stream = await connection.newStream(ECHO, { runOnLimitedConnection: connection.limits != null })
  const sent = new TextEncoder().encode(text)
  await write(stream, sent)
  await stream.close()
  const back = await readAll(stream)
  if (Buffer.compare(Buffer.from(back), Buffer.from(sent)) !== 0) {
    // js-libp2p 3 ends the streams of an aborted connection (a relayed one cut at its limit,
    // say) as if the remote had closed them: the iteration ends without an error and the
    // stream says `closed`. Only the connection tells.
    if (stream.status === 'reset' || stream.status === 'aborted' || connection.status === 'aborted') {
      const what = connection.status === 'aborted' ? 'connection' : 'stream'
      throw new Error(`echo ${what} aborted after ${back.byteLength} of ${sent.byteLength} bytes came back`)
    }
    throw new Error(`echo returned ${back.byteLength} different bytes`)
  }
  return back.byteLength
}

/** One /perf/1.0.0 exchange: upload `upload` bytes, ask for `download` back; bytes received. */
export async function perfClient (connection, upload, download) {
  const stream = await connection.newStream(PERF)
  const header = new Uint8Array(8)
  new DataView(header.buffer).setBigUint64(0, BigInt(download), false)
  await write(stream, header)
  const chunk = new Uint8Array(PERF_CHUNK)
  let left = upload
  while (left > 0) {
    const n = Math.min(left, PERF_CHUNK)
    await write(stream, chunk.subarray(0, n))
    left -= n
  }
  await stream.close()
  let received = 0
  for await (const c of stream) received += bytesOf(c).byteLength
  return received
}
