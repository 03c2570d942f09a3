/** The WebSocket and TLS scenarios again with `workers: 2` (SPEC §9): upgrades and their edge cases, tunnels, certificates, SNI, handshake limits and their reload. */
import t from 'tap';
import { runScenarios } from '../helpers/contract.js';

runScenarios(t, ['websocket', 'websocket-handshake', 'tls', 'tls-edges', 'sni'], 2);
