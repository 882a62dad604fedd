/**
 * This machine's identity beside its host name, for telling machines apart in a shared lock space:
 * two machines may share a host name (cloned VMs, containers with a fixed hostname, default names
 * such as 'localhost' or 'debian').
 *
 * What "this machine" means is what `locksmith locks` does with it (src/locks-cli.ts,
 * isThisMachine): a late node's mount recorded as this machine's is named by its recorded
 * mountpoint as one of this machine's mounts (MOUNT, "the mount at P" with no host), a path that is
 * only right where that mount is in the mount table `locks` reads (/proc/self/mountinfo) and its
 * control socket is reachable at its path. That is one mount namespace of one running kernel, so
 * the identity is a keyed hash of three things:
 * - the machine ID (machine-id(5)): unique per installation, but an image that ships one (or a
 *   container given the host's) gives the same to every container of it, on any host;
 * - the boot ID (/proc/sys/kernel/random/boot_id): random per boot of a kernel, so it tells hosts
 *   apart (a container shares its host's);
 * - the mount namespace (the device and inode of /proc/self/ns/mnt, namespaces(7)): tells apart
 *   the containers of one host (each has its own), and is shared by every process of one (a shell,
 *   sudo, a service without a mount namespace of its own). Its inode alone says nothing across
 *   hosts (the initial one has the same number on every host): the boot ID does.
 * Not the PID namespace: the record holds no pid, and a PID namespace alone (`unshare -p -f`)
 * leaves the mount table, thus the mount's path, the same.
 * What this leaves: a `locks` run in a mount namespace of its own on this host (`unshare -m`, a
 * service with PrivateTmp= or ProtectSystem=) takes the host's mounts for another machine's with
 * this host name, even where they reach its view; a mount whose namespace is gone (and its mount
 * with it) may be taken for one of a newer namespace that got its inode number, until its session
 * expires; and a record written before the boot ID and namespace were part of the identity (a
 * machine ID alone) reads as another machine's.
 * Without a boot ID (no /proc) the identity is the machine ID's alone, as before; without either,
 * there is none, and machines are told apart by host name alone.
 */
import { createHmac } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** Where the machine ID is read, in order (the D-Bus copy for systems without systemd's). */
const MACHINE_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'];

/** The kernel's boot ID: random, made anew at each boot. */
const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';

/** This process's mount namespace: two processes are in the same one when its device and inode are the same. */
const MOUNT_NS_FILE = '/proc/self/ns/mnt';

/**
 * The key of the hash: machine-id(5) says the ID is confidential and that an application needing a
 * stable identifier should hash it with a keyed cryptographic hash and a fixed application-specific
 * key (as systemd's sd_id128_get_machine_app_specific does), never use it or a part of it as is.
 * The boot ID is hashed the same way (as sd_id128_get_boot_app_specific does).
 */
const APP_KEY = 'locksmith machine identity';

/** What a machine identity is made of, as read (never recorded as is). */
export interface MachineIds {
  /** The machine ID (machine-id(5)). */
  machineId?: string;
  /** The kernel's boot ID. */
  bootId?: string;
  /** The mount namespace: "<device>:<inode>" of /proc/self/ns/mnt. */
  mountNs?: string;
}

/**
 * The identity of the machine `ids` are of: 16 hex digits (64 bits) of HMAC-SHA256 keyed by the
 * machine ID (else the boot ID) over the application's key, the boot ID and the mount namespace;
 * undefined without a machine ID or a boot ID. With the machine ID alone it is the identity of
 * the versions before the boot ID and namespace were part of it.
 */
export function machineIdentity(ids: MachineIds): string | undefined {
  const key = ids.machineId ?? ids.bootId;
  if (key === undefined) return undefined;
  const parts = [APP_KEY, ...(ids.bootId === undefined ? [] : [`boot ${ids.bootId}`]), ...(ids.mountNs === undefined ? [] : [`mnt ${ids.mountNs}`])];
  return createHmac('sha256', key).update(parts.join('\n')).digest('hex').slice(0, 16);
}

/** The first of `files` that holds an ID (neither empty nor 'uninitialized'), trimmed, else undefined. */
function readId(files: readonly string[]): string | undefined {
  for (const f of files) {
    try {
      const v = readFileSync(f, 'utf8').trim();
      // An empty file (an image not yet booted) or 'uninitialized' (machine-id(5)) is no ID.
      if (v !== '' && v !== 'uninitialized') return v;
    } catch {
      // Not readable: the next one, else none.
    }
  }
  return undefined;
}

/** What this process's machine identity is made of (MachineIds), read now: each part that can be read. */
export function readMachineIds(): MachineIds {
  const machineId = readId(MACHINE_ID_FILES);
  const bootId = readId([BOOT_ID_FILE]);
  let mountNs: string | undefined;
  try {
    const s = statSync(MOUNT_NS_FILE);
    mountNs = `${s.dev}:${s.ino}`;
  } catch {
    // No /proc, or a kernel before 3.8: the machine and boot alone.
  }
  return { ...(machineId === undefined ? {} : { machineId }), ...(bootId === undefined ? {} : { bootId }), ...(mountNs === undefined ? {} : { mountNs }) };
}

let cached: { id: string | undefined } | undefined;

/**
 * This machine's identity (machineIdentity of readMachineIds(), read once per process), or
 * undefined when neither a machine ID nor a boot ID can be read (then machines are told apart by
 * host name alone).
 */
export function thisMachine(): string | undefined {
  if (cached === undefined) cached = { id: machineIdentity(readMachineIds()) };
  return cached.id;
}

/**
 * Whether a mount recorded on `host` (its machine identity `machine`, when it recorded one) is on
 * this machine: by machine identity when both sides have one, else by host name.
 */
export function isThisMachine(host: string, machine: string | undefined, here: { host: string; machine: string | undefined }): boolean {
  return machine !== undefined && here.machine !== undefined ? machine === here.machine : host === here.host;
}
