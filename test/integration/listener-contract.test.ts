/**
 * One listener contract, run over every listener kind (HTTP, HTTPS, TCP, TLS): they share one
 * lifecycle in src/listeners/listener.ts, and this is what keeps them from drifting apart again.
 */
import t from 'tap';
import { listenerContract } from '../helpers/listener-contract.js';
import { listenerKinds } from '../helpers/listener-kinds.js';

const dir = t.testdir({});
for (const kind of await listenerKinds(dir)) listenerContract(t, kind);
