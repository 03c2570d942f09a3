/** The failover and admin scenarios again with `workers: 2` (SPEC §9): failover, spill, manual failback, admin actions, metrics. */
import t from 'tap';
import { runScenarios } from '../helpers/contract.js';

runScenarios(t, ['failover', 'admin'], 2);
