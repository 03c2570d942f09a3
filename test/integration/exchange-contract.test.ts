/**
 * One exchange contract, run over every exchange kind the proxy forwards (HTTP/1.1, HTTP/2,
 * WebSocket upgrade): they share one skeleton in src/forward/exchange.ts, and this is what keeps
 * them from drifting apart again.
 */
import t from 'tap';
import { exchangeContract } from '../helpers/exchange-contract.js';
import { exchangeKinds } from '../helpers/exchange-kinds.js';

const dir = t.testdir({});
for (const kind of await exchangeKinds(dir)) exchangeContract(t, kind);
