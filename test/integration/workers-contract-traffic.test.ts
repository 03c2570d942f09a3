/** The HTTP and TCP scenarios again with `workers: 2` (SPEC §9): proxying, limits, keep-alive, TCP tunnels, connect timeouts. */
import t from 'tap';
import { runScenarios } from '../helpers/contract.js';

runScenarios(t, ['http-core', 'tcp', 'connect-timeout'], 2);
