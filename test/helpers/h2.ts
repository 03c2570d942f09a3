/**
 * HTTP/2 clients for tests: node:http2 sessions over TLS, and raw frames written by hand (for the
 * abuse cases a well-behaved client library will not produce). Frames follow RFC 9113 §4.1;
 * header blocks use HPACK literals without indexing and without Huffman (RFC 7541 §6.2.2), which
 * any decoder must accept.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import tls, { type TLSSocket } from 'node:tls';

export interface H2Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * An HTTP/2 session to 127.0.0.1:`port` over TLS (ALPN h2), certificate checked against `ca`;
 * resolves once the server's SETTINGS arrived (`remoteSettings` holds Node's defaults before).
 */
export function h2connect(port: number, ca: readonly Buffer[]): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://localhost:${port}`, { ca: [...ca], servername: 'localhost', host: '127.0.0.1' });
    session.once('remoteSettings', () => {
      session.off('error', reject);
      session.on('error', () => undefined);
      resolve(session);
    });
    session.once('error', reject);
  });
}

/** One request on `session`; `body` is sent and the stream ended. Rejects on a stream error (a reset). */
export function h2request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': body === undefined ? 'GET' : 'POST', ...headers });
    const chunks: Buffer[] = [];
    let head: IncomingHttpHeaders = {};
    stream.on('response', (h) => (head = h));
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('error', reject);
    // On 'close', not 'end': a stream reset after part of the body also ends the readable side.
    stream.on('close', () => {
      if (stream.rstCode !== undefined && stream.rstCode !== 0) reject(new Error(`stream reset with code ${stream.rstCode}`));
      else resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) });
    });
    stream.end(body);
  });
}

/** Closes a session and waits for it to be gone. */
export function h2close(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.destroyed) {
      resolve();
      return;
    }
    session.once('close', () => resolve());
    session.close();
  });
}

// ---- raw frames ----

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4 } as const;
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [value];
  const out = [max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest >>= 7;
  }
  out.push(rest);
  return out;
}

/** A header block of literal fields without indexing, new names, no Huffman. */
export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(Buffer.from([0x00, ...hpackInt(n.length, 7)]), n, Buffer.from(hpackInt(v.length, 7)), v);
  }
  return Buffer.concat(parts);
}

/** The pseudo-headers of a GET of `path` for `authority`. */
export function getFields(path = '/', authority = 'localhost'): [string, string][] {
  return [[':method', 'GET'], [':scheme', 'https'], [':path', path], [':authority', authority]];
}

export function headersFrame(stream: number, fields: readonly (readonly [string, string])[], flags: number = FLAG.END_HEADERS | FLAG.END_STREAM): Buffer {
  return frame(FRAME.HEADERS, flags, stream, headerBlock(fields));
}

export function settingsFrame(entries: readonly (readonly [number, number])[] = []): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, payload);
}

export function rstFrame(stream: number, code = 8 /* CANCEL */): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, payload);
}

export function pingFrame(): Buffer {
  return frame(FRAME.PING, 0, 0, Buffer.alloc(8));
}

export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

/** A raw HTTP/2 connection: TLS with ALPN h2, frames parsed as they arrive. */
export class RawH2 {
  readonly socket: TLSSocket;
  readonly frames: ReceivedFrame[] = [];
  readonly closed: Promise<void>;
  #buffer: Buffer = Buffer.alloc(0);

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => this.#parse(d));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(port: number, ca: readonly Buffer[]): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: [...ca], ALPNProtocols: ['h2'] }, () => {
        socket.off('error', reject);
        resolve(new RawH2(socket));
      });
      socket.once('error', reject);
    });
  }

  /** The connection preface and an empty SETTINGS, then `frames`, in one write. */
  open(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat([PREFACE, settingsFrame(), ...frames]));
  }

  write(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** The error code of the GOAWAY received, or null. */
  get goaway(): number | null {
    const goaway = this.frames.find((f) => f.type === FRAME.GOAWAY);
    return goaway === undefined ? null : goaway.payload.readUInt32BE(4);
  }

  /** Streams the server reset, with their codes. */
  resets(): Map<number, number> {
    const out = new Map<number, number>();
    for (const f of this.frames) if (f.type === FRAME.RST_STREAM) out.set(f.stream, f.payload.readUInt32BE(0));
    return out;
  }

  /** Streams the server answered with a HEADERS frame. */
  answered(): number[] {
    return this.frames.filter((f) => f.type === FRAME.HEADERS).map((f) => f.stream);
  }

  destroy(): void {
    this.socket.destroy();
  }

  #parse(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 9) {
      const length = this.#buffer.readUIntBE(0, 3);
      if (this.#buffer.length < 9 + length) break;
      this.frames.push({
        type: this.#buffer[3] as number,
        flags: this.#buffer[4] as number,
        stream: this.#buffer.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.#buffer.subarray(9, 9 + length)),
      });
      this.#buffer = this.#buffer.subarray(9 + length);
    }
  }
}
