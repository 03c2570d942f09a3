/** The WebSocket and TLS scenarios again with `workers: 2` (SPEC §9): upgrades, tunnels, certificates and their reload. */
import t from 'tap';
import { runScenarios } from '../helpers/contract.js';

runScenarios(t, ['websocket', 'tls'], 2);
