/** The reload and shutdown scenarios again with `workers: 2` (SPEC §9): reload keeping state under load, shutdown draining. */
import t from 'tap';
import { runScenarios } from '../helpers/contract.js';

runScenarios(t, ['reload', 'shutdown'], 2);
