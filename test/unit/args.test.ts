import t from 'tap';
import { parseArgs } from '../../src/args.js';

t.strictSame(parseArgs([]), { kind: 'run', file: 'proxy.yaml' });
t.strictSame(parseArgs(['-c', 'x.yaml']), { kind: 'run', file: 'x.yaml' });
t.strictSame(parseArgs(['--config=y.yaml']), { kind: 'run', file: 'y.yaml' });
t.strictSame(parseArgs(['check']), { kind: 'check', file: 'proxy.yaml' });
t.strictSame(parseArgs(['check', '--config', 'z.yaml']), { kind: 'check', file: 'z.yaml' });
t.strictSame(parseArgs(['--version']), { kind: 'version' });
t.strictSame(parseArgs(['--help']), { kind: 'help' });
t.equal(parseArgs(['-c']).kind, 'usage');
t.equal(parseArgs(['--bogus']).kind, 'usage');
t.equal(parseArgs(['run']).kind, 'usage');

// Flags and the command in any order.
t.strictSame(parseArgs(['--config', 'z.yaml', 'check']), { kind: 'check', file: 'z.yaml' });
t.strictSame(parseArgs(['-c', 'z.yaml', 'check']), { kind: 'check', file: 'z.yaml' });
t.strictSame(parseArgs(['--config=z.yaml', 'check']), { kind: 'check', file: 'z.yaml' });
t.equal(parseArgs(['check', 'check']).kind, 'usage', 'the command is given once');
