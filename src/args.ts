/**
 * Command-line parsing (SPEC §1): pure, so it is unit-tested without a process. Flags and the
 * `check` command may come in any order (`hotwarm --config FILE check` = `hotwarm check -c FILE`).
 */

export const USAGE = `usage: hotwarm [-c FILE]          run the proxy (default FILE: ./proxy.yaml)
       hotwarm check [-c FILE]    validate FILE and exit
       hotwarm --version | --help`;

export type Command = { kind: 'run' | 'check'; file: string } | { kind: 'version' | 'help' } | { kind: 'usage'; message: string };

export function parseArgs(argv: readonly string[]): Command {
  let kind: 'run' | 'check' = 'run';
  let file = 'proxy.yaml';
  const args = [...argv];
  while (args.length > 0) {
    const arg = args.shift() as string;
    if (arg === 'check' && kind === 'run') kind = 'check';
    else if (arg === '--version' || arg === '-v') return { kind: 'version' };
    else if (arg === '--help' || arg === '-h') return { kind: 'help' };
    else if (arg === '-c' || arg === '--config') {
      const value = args.shift();
      if (value === undefined || value === '') return { kind: 'usage', message: `${arg} needs a file` };
      file = value;
    } else if (arg.startsWith('--config=')) {
      file = arg.slice('--config='.length);
    } else {
      return { kind: 'usage', message: `unknown argument: ${arg}` };
    }
  }
  return { kind, file };
}
