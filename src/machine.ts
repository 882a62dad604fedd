/**
 * This machine's identity beside its host name, for telling machines apart in a shared lock space:
 * two machines may share a host name (cloned VMs, containers with a fixed hostname, default names
 * such as 'localhost' or 'debian'), not a machine ID (machine-id(5): unique per installation).
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Where the machine ID is read, in order (the D-Bus copy for systems without systemd's). */
const MACHINE_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'];

/**
 * The key of the hash: machine-id(5) says the ID is confidential and that an application needing a
 * stable identifier should hash it with a keyed cryptographic hash and a fixed application-specific
 * key (as systemd's sd_id128_get_machine_app_specific does), never use it or a part of it as is.
 */
const APP_KEY = 'locksmith machine identity';

/** The identity of the machine whose ID `id` is: 16 hex digits (64 bits) of HMAC-SHA256 with the ID as key. */
export function machineIdentity(id: string): string {
  return createHmac('sha256', id).update(APP_KEY).digest('hex').slice(0, 16);
}

let cached: { id: string | undefined } | undefined;

/**
 * This machine's identity (machineIdentity of its machine ID, read once per process from
 * /etc/machine-id, else /var/lib/dbus/machine-id), or undefined when neither can be read or holds
 * an ID (then machines are told apart by host name alone).
 */
export function thisMachine(): string | undefined {
  if (cached === undefined) {
    let id: string | undefined;
    for (const f of MACHINE_ID_FILES) {
      try {
        const v = readFileSync(f, 'utf8').trim();
        // An empty file (an image not yet booted) or 'uninitialized' (machine-id(5)) is no ID.
        if (v !== '' && v !== 'uninitialized') {
          id = v;
          break;
        }
      } catch {
        // Not readable: the next one, else none.
      }
    }
    cached = { id: id === undefined ? undefined : machineIdentity(id) };
  }
  return cached.id;
}

/**
 * Whether a mount recorded on `host` (its machine identity `machine`, when it recorded one) is on
 * this machine: by machine identity when both sides have one, else by host name.
 */
export function isThisMachine(host: string, machine: string | undefined, here: { host: string; machine: string | undefined }): boolean {
  return machine !== undefined && here.machine !== undefined ? machine === here.machine : host === here.host;
}
