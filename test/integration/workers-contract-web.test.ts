/** The web-app scenarios again with `workers: 2` (SPEC §9): sticky sessions, redirects, header rules, body limits, PROXY protocol both ways, HTTP/2, the README's site example. */
import t from 'tap';
import { runScenarios } from '../helpers/contract.js';

runScenarios(t, ['sticky', 'web-rules', 'proxy-protocol', 'send-proxy-protocol', 'h2', 'site-example'], 2);
