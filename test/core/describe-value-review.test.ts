/**
 * describeValue on hostile values (review of issue 13): what an error message shows after "got"
 * must stay short and on one line whatever the value is, and read as English.
 */
import t from 'tap';
import { describeValue } from '../../src/core/input.js';

t.test('a class name is shown bounded and on one line, as a string value is', async (t) => {
  const C = class {};
  Object.defineProperty(C, 'name', { value: `A\n\u001b[31mfake: error\n${'x'.repeat(100_000)}` });
  const shown = describeValue(new C());
  t.ok(shown.length < 100, `short (${shown.length} characters), as a string value is cut at 60`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: those are the characters looked for
  t.notMatch(shown, /[\u0000-\u001f]/, 'no newline nor escape sequence from the name reaches the message');
});

t.test('"a" or "an" by the sound, not the letter', async (t) => {
  t.equal(describeValue(new URL('redis://h')), 'a URL');
  t.equal(describeValue(new Uint8Array(1)), 'a Uint8Array');
  t.equal(describeValue(new Error('x')), 'an Error');
  t.equal(describeValue(new AbortController()), 'an AbortController');
  t.equal(describeValue(new Date(0)), 'a Date');
});

t.test('a string cut in the middle of a surrogate pair does not show half of it', async (t) => {
  const shown = describeValue(`${'a'.repeat(59)}\u{1F600}tail`);
  t.notMatch(shown, /\\ud83d/i, 'no lone high surrogate escape where the cut fell inside the pair');
  t.match(shown, /…'$/, 'still marked as cut');
});
