/**
 * The failure contract of every exchange kind and the hostile-input scenarios again with
 * `workers: 2` (SPEC §9): refused and cut backends, client aborts, timeouts, 503 against 502,
 * malformed requests, smuggling, header limits and HTTP/2 abuse, answered by a worker exactly as
 * one process answers them.
 */
import t from 'tap';
import { runScenarios } from '../helpers/contract.js';

runScenarios(t, ['exchange-contract', 'hostile/bad-input', 'hostile/security', 'hostile/h2-abuse'], 2);
