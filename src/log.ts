/**
 * The log of a long-running locksmith command (`locksmith mount`): one line per event on stderr,
 * filtered by a level from `--log-level` or LOCKSMITH_LOG_LEVEL (the flag wins; default 'warn').
 *
 * The coordinator reports hook failures, faults and worker replacements as process warnings
 * (LocksmithHookWarning, LocksmithFaultWarning, LocksmithWorkerWarning); `printWarnings` takes
 * over the process's 'warning' event so they come out as log lines at their level instead of
 * Node's default "(node:PID) Warning: ..." text.
 */

/** A name as text safe for a terminal: control characters (a file may be named with them) as \xNN. */
export function printable(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are what is being escaped
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * The message of an error thrown by the command line's parse: node:util parseArgs' own errors as
 * a sentence of ours ("unknown option '--x'", "--x needs a value", "--x takes no value"; its
 * text, with advice about '--', confuses more than it helps), any other error's message as is.
 */
export function argsMessage(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const option = /^-{1,2}[^\s=<]+/.exec(quoted)?.[0] ?? quoted;
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${quoted}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /does not take an argument/.test(message) ? `${option} takes no value` : `${option} needs a value`;
    default:
      return message.split('\n')[0]!;
  }
}

/**
 * The command line with each `--flag -N` (an option that takes a value, followed by a negative
 * number) written `--flag=-N`. parseArgs reads '-1' as an option and the user would be told
 * "--flag needs a value"; joined, the value reaches the flag's own check, which says what a valid
 * value is ("--duration must be between 1 and 86400 seconds, got -1"). No option of ours is a
 * digit, so a negative number is never one; everything after '--' is left as it is.
 */
export function joinNegativeValues(argv: readonly string[], valued: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return [...out, ...argv.slice(i)];
    const next = argv[i + 1];
    if (a.startsWith('--') && valued.includes(a.slice(2)) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_LEVEL_ENV = 'LOCKSMITH_LOG_LEVEL';

/** The level a process warning is logged at, by its name. */
export const WARNING_LEVELS: Readonly<Record<string, LogLevel>> = {
  LocksmithFaultWarning: 'error',
  LocksmithHookWarning: 'warn',
  LocksmithEngineWarning: 'warn',
  LocksmithWorkerWarning: 'warn',
};

/**
 * The level to use: `flag` (from --log-level) if given, else the environment variable, else 'warn'.
 * Throws an Error naming the source and the accepted values when the text is not a level.
 */
export function resolveLogLevel(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const [text, from] = flag !== undefined ? [flag, '--log-level'] : [env[LOG_LEVEL_ENV], LOG_LEVEL_ENV];
  // An empty variable is unset; an empty --log-level is a flag given without its level.
  if (text === undefined || (text === '' && flag === undefined)) return 'warn';
  const t = text.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(t)) return t as LogLevel;
  throw new Error(`${from} must be one of ${LOG_LEVELS.join(', ')}, got '${text}'`);
}

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

/** A logger writing `<ISO time> <prefix> <level>: <msg>` lines to `out` (stderr) at `level` and above. */
export function createLogger(prefix: string, level: LogLevel, out: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const rank = LOG_LEVELS.indexOf(level);
  const enabled = (l: LogLevel) => LOG_LEVELS.indexOf(l) <= rank;
  const at = (l: LogLevel) => (msg: string) => {
    if (enabled(l)) out(`${new Date().toISOString()} ${prefix} ${l}: ${msg.replace(/\n+$/, '').replace(/\n/g, '\n    ')}\n`);
  };
  return { level, enabled, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

/**
 * Routes every process warning to `log` (Locksmith* warnings at their WARNING_LEVELS level, other
 * warnings such as deprecations at 'warn'), replacing Node's default printer. Returns a function
 * that puts the previous listeners back.
 */
export function printWarnings(log: Logger): () => void {
  const previous = process.listeners('warning');
  process.removeAllListeners('warning');
  const listener = (w: Error) => {
    const level = WARNING_LEVELS[w.name] ?? 'warn';
    const text = w.message.replace(/^locksmith: /, '');
    log[level](`${text} (${w.name})`);
    if (log.enabled('debug') && w.stack) log.debug(w.stack);
  };
  process.on('warning', listener);
  return () => {
    process.off('warning', listener);
    for (const l of previous) process.on('warning', l);
  };
}
