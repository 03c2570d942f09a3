/**
 * Entry of a worker process (SPEC §9), started by the primary through node:cluster; never run
 * by hand. See workers/worker.ts.
 */
import './node-compat.js';
import { runWorker } from './workers/worker.js';

runWorker();
