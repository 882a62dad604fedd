/**
 * An addon built from other native sources than those beside it (a pull without a rebuild) is
 * refused with the command that rebuilds it, instead of being loaded and missing what the
 * TypeScript expects. Checked on a copy of the package layout in a temporary directory, with the
 * build record (build/locksmith-build.json) that scripts/build-native.js writes.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const built = join(import.meta.dirname, '..', '..', 'dist', 'src', 'native', 'index.js');

async function loadIn(t: Test, record: unknown, sourcesNewer = false): Promise<{ ok: boolean; reason?: string }> {
  const root = mkdtempSync(join(tmpdir(), 'locksmith-stale-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'locksmith', type: 'module' }));
  writeFileSync(join(root, 'binding.gyp'), '{}\n');
  mkdirSync(join(root, 'src', 'native'), { recursive: true });
  writeFileSync(join(root, 'src', 'native', 'pump.cc'), 'int x;\n');
  // An addon file that is no addon: the stale check comes before any attempt to load it.
  mkdirSync(join(root, 'build', 'Release'), { recursive: true });
  writeFileSync(join(root, 'build', 'Release', 'locksmith_native.node'), 'not an addon');
  if (record !== undefined) writeFileSync(join(root, 'build', 'locksmith-build.json'), JSON.stringify(record));
  // Without a record only file times can tell: sources an hour older, or an hour newer, than the addon.
  const hour = (sourcesNewer ? 3600 : -3600) + Date.now() / 1000;
  utimesSync(join(root, 'src', 'native', 'pump.cc'), hour, hour);
  mkdirSync(join(root, 'dist', 'src', 'native'), { recursive: true });
  copyFileSync(built, join(root, 'dist', 'src', 'native', 'index.js'));
  const m = (await import(pathToFileURL(join(root, 'dist', 'src', 'native', 'index.js')).href)) as { nativeAvailable(): { ok: boolean; reason?: string } };
  return m.nativeAvailable();
}

const hashOf = (...parts: string[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

t.test('a build record of other sources: refused, with the rebuild command', async (t) => {
  const r = await loadIn(t, { fuse: true, sources: hashOf('something else') });
  t.equal(r.ok, false);
  t.match(r.reason, /built from other sources than these/);
  t.match(r.reason, /npm run build:native/);
});

t.test('a build record of these sources: the check passes, and the file is then loaded (here it is no addon)', async (t) => {
  const r = await loadIn(t, { fuse: true, sources: hashOf('{}\n', 'int x;\n') });
  t.equal(r.ok, false);
  t.notMatch(r.reason, /other sources/);
  t.match(r.reason, /failed to load/);
});

t.test('no build record (a direct node-gyp rebuild removes it): sources newer than the addon are refused', async (t) => {
  const newer = await loadIn(t, undefined, true);
  t.match(newer.reason, /built from other sources than these/);
  const older = await loadIn(t, undefined, false);
  t.notMatch(older.reason, /other sources/, 'an addon newer than its sources is loaded');
  t.match(older.reason, /failed to load/);
});
