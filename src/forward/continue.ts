/**
 * `Expect: 100-continue` answered by the proxy (RFC 9110 §10.1.1). Left to itself, Node writes
 * `100 Continue` the moment the request head arrives, before we have decided anything: a client
 * then sends a body that is refused anyway (413 by Content-Length, a redirect, 404). The
 * listeners take Node's `checkContinue` event instead and mark the response here; the forwarder
 * sends `100 Continue` only once the request is on its way to a backend. Every other answer is
 * final without it, and Node closes such a connection after the response (the body the client
 * may still send is never read as a next request).
 */

const awaiting = new WeakSet<object>();

/** `res` answers a request whose `100 Continue` is ours to send (a `checkContinue` request). */
export function awaitContinue(res: object): void {
  awaiting.add(res);
}

/** Sends `100 Continue` if the client is waiting for it (once). */
export function sendContinue(res: { writeContinue(): void }): void {
  if (awaiting.delete(res)) res.writeContinue();
}
