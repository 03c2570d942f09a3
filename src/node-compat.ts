/**
 * Imported by the modules that load http-proxy, before it (and first by main.ts).
 *
 * http-proxy 1.18 takes `util._extend` when it loads; Node 22 and later print a DEP0060
 * deprecation warning on stderr at its first call — on the first proxied request, long after
 * startup, where an operator reads it as an error. `_extend` copies a source's own enumerable
 * keys onto a target, which is what `Object.assign` does.
 */
import util from 'node:util';

(util as unknown as { _extend: (target: object, source: unknown) => object })._extend = (target, source) =>
  source === null || typeof source !== 'object' ? target : Object.assign(target, source);
