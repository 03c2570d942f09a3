/** The DNS scenarios again with `workers: 2` (SPEC §9): the primary looks names up, every worker takes the member lists it resolved. */
import t from 'tap';
import { runScenarios } from '../helpers/contract.js';

runScenarios(t, ['discovery'], 2);
