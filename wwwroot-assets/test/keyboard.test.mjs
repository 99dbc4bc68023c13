import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyboardCapture, chunkText, untypable } from '../console/keyboard.js';

function ev(type, code) {
  return { type, code, prevented: false, preventDefault() { this.prevented = true; }, stopPropagation() {} };
}

test('keys are forwarded by code with default prevented, held keys released on blur', () => {
  const sent = [];
  const kb = new KeyboardCapture((code, down) => sent.push(`${down ? '+' : '-'}${code}`));
  const e = ev('keydown', 'ControlLeft');
  assert.equal(kb.handle(e), true);
  assert.equal(e.prevented, true);
  kb.handle(ev('keydown', 'AltLeft'));
  kb.handle(ev('keydown', 'KeyT'));
  kb.handle(ev('keyup', 'KeyT'));
  assert.deepEqual(kb.releaseAll(), ['AltLeft', 'ControlLeft']);
  assert.deepEqual(sent, ['+ControlLeft', '+AltLeft', '+KeyT', '-KeyT', '-AltLeft', '-ControlLeft']);
  assert.deepEqual(kb.releaseAll(), []);
});

test('keyup without keydown is dropped, except PrintScreen which gets a full press', () => {
  const sent = [];
  const kb = new KeyboardCapture((code, down) => sent.push(`${down ? '+' : '-'}${code}`));
  kb.handle(ev('keyup', 'KeyA'));
  kb.handle(ev('keyup', 'PrintScreen'));
  assert.deepEqual(sent, ['+PrintScreen', '-PrintScreen']);
});

test('unidentified keys stay with the browser', () => {
  const kb = new KeyboardCapture(() => assert.fail('sent'));
  const e = ev('keydown', '');
  assert.equal(kb.handle(e), false);
  assert.equal(e.prevented, false);
});

test('text checks and chunks', () => {
  assert.deepEqual(untypable('echo hé€é\n'), ['é', '€']);
  assert.deepEqual(untypable('ls -l | grep "x"\t\r\n'), []);
  assert.deepEqual(chunkText('abcdef', 4), ['abcd', 'ef']);
  assert.deepEqual(chunkText('abc\r\ndef', 4), ['abc\r\n', 'def']);
  assert.equal(chunkText('x'.repeat(100), 32).join(''), 'x'.repeat(100));
});
