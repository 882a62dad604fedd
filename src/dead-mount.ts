/**
 * A dead FUSE mount: the server of a mount was killed (kill -9, a crash), so the kernel answers every
 * use of the mountpoint with ENOTCONN ("Transport endpoint is not connected") until someone
 * unmounts it. Clients are not stuck (ECONNABORTED, no D state); the mountpoint just needs a lazy
 * unmount before anything can be mounted there again.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { printable } from './log.js';

/**
 * `s` quoted for a shell when it needs to be: in single quotes, or, when it holds control
 * characters (a newline would split the command's line), in $'...' with those as their UTF-8
 * bytes \xNN (bash, zsh, ksh, and POSIX since 2024), so the command stays one line that a shell
 * runs as it is.
 */
function shellWord(s: string): string {
  if (/^[\w@%+=:,./-]+$/.test(s)) return s;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are what is being escaped
  if (!/[\x00-\x1f\x7f-\x9f]/.test(s)) return `'${s.replace(/'/g, `'\\''`)}'`;
  const bytes = (c: string) => [...Buffer.from(c, 'utf8')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are what is being escaped
  return `$'${s.replace(/[\\']/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f-\x9f]/g, bytes)}'`;
}

/**
 * Whether `mountpoint` is a FUSE mount whose server is gone: stat(2) on it fails with ENOTCONN
 * (or ECONNABORTED after an abort). Such a mountpoint fails every use until it is unmounted.
 */
export function isDeadMount(mountpoint: string): boolean {
  try {
    statSync(mountpoint);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOTCONN' || code === 'ECONNABORTED';
  }
}

/** The command that removes a dead mount at `mountpoint` (as root, `umount -l` works as well). */
export function deadMountCommand(mountpoint: string): string {
  return `fusermount3 -u -z ${shellWord(mountpoint)}`;
}

/** mountFuse's rejection when the mountpoint is a dead FUSE mount and cleanStale is not set. */
export class DeadMountError extends Error {
  /** The command that cleans it up. */
  readonly command: string;
  constructor(readonly mountpoint: string) {
    const command = deadMountCommand(mountpoint);
    super(`the mountpoint ${printable(mountpoint)} is a dead FUSE mount (its server exited without unmounting): run '${command}' (or 'umount -l ${shellWord(mountpoint)}' as root) first`);
    this.name = 'DeadMountError';
    this.command = command;
  }
}

/**
 * Lazily unmounts the dead FUSE mount at `mountpoint` (fusermount3 -u -z, else umount -l).
 * Returns true when the mountpoint is usable afterwards.
 */
export function cleanDeadMount(mountpoint: string): boolean {
  for (const [cmd, ...args] of [['fusermount3', '-u', '-z', mountpoint], ['umount', '-l', mountpoint]] as const) {
    if (!isDeadMount(mountpoint)) return true;
    try {
      execFileSync(cmd, args, { stdio: 'ignore' });
    } catch {
      // try the next
    }
  }
  return !isDeadMount(mountpoint);
}
