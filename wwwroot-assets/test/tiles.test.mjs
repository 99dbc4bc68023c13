// Unit tests of the console client's tile decoding: against frames the C# encoder wrote (fixtures/frame.json) and
// against tiles built here from the documented byte layouts with node's zlib.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { decodeTileRgba, encodingOf, Encoding, bitsPerIndex } from '../console/tiles.js';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/frame.json', import.meta.url)));

async function render(frame) {
  const w = frame.Width, h = frame.Height, out = new Uint8Array(w * h * 4);
  for (const t of frame.Tiles) {
    const tile = { ...t, Bytes: Buffer.from(t.Bytes, 'base64') };
    const d = await decodeTileRgba(tile);
    for (let y = 0; y < t.H; y++)
      for (let x = 0; x < t.W; x++) {
        const o = ((t.Y + y) * w + t.X + x) * 4;
        if (d.solid) { out.set(d.solid, o); out[o + 3] = 255; } else out.set(d.rgba.subarray((y * t.W + x) * 4, (y * t.W + x) * 4 + 4), o);
      }
  }
  return out;
}

for (const name of ['auto', 'rgb']) {
  test(`frame encoded by C# (${name}) decodes to the expected pixels`, async () => {
    const frame = fixture.frames[name];
    assert.equal(frame.Width, fixture.width);
    const rgba = await render(frame);
    assert.equal(createHash('sha256').update(rgba).digest('hex'), fixture.rgbaSha256);
  });
}

test('fixture covers every encoding', () => {
  const used = new Set(Object.values(fixture.frames).flatMap((f) => f.Tiles.map((t) => encodingOf(t))));
  assert.deepEqual([...used].sort(), [Encoding.Solid, Encoding.Rgb, Encoding.Palette, Encoding.Png].sort());
});

test('encoding given as number or name', () => {
  assert.equal(encodingOf({ Encoding: 'Palette' }), 2);
  assert.equal(encodingOf({ Encoding: 3 }), 3);
  assert.throws(() => encodingOf({ Encoding: 'Jpeg' }));
});

test('packed 2-bit palette tile built from the documented layout', async () => {
  // 5×2 tile, 3 colours → 2 bits per index, rows padded to bytes: row bytes = 2.
  const pal = [10, 20, 30, 40, 50, 60, 70, 80, 90];
  const idx = [[0, 1, 2, 1, 0], [2, 2, 0, 0, 1]];
  assert.equal(bitsPerIndex(3), 2);
  const packed = new Uint8Array(4);
  idx.forEach((row, y) => row.forEach((v, x) => { packed[y * 2 + (x >> 2)] |= v << (6 - 2 * (x & 3)); }));
  const bytes = Buffer.concat([Buffer.from([2, ...pal]), deflateSync(packed)]);
  const d = await decodeTileRgba({ W: 5, H: 2, Encoding: 'Palette', Bytes: bytes });
  const got = [];
  for (let i = 0; i < 10; i++) got.push(d.rgba[i * 4] / 10 / 3 | 0);
  assert.deepEqual(got, idx.flat().map((v) => (pal[v * 3] / 10 / 3) | 0));
  assert.equal(d.rgba[3], 255);
});

test('unpacked 8-bit palette indices are recognised by their length', async () => {
  const bytes = Buffer.concat([Buffer.from([1, 0, 0, 0, 255, 255, 255]), deflateSync(Buffer.from([0, 1, 1, 0]))]);
  const d = await decodeTileRgba({ W: 4, H: 1, Encoding: 2, Bytes: bytes });
  assert.deepEqual([...d.rgba.filter((_, i) => i % 4 === 0)], [0, 255, 255, 0]);
});

test('corrupt tiles are rejected', async () => {
  await assert.rejects(decodeTileRgba({ W: 2, H: 2, Encoding: 'Rgb', Bytes: deflateSync(Buffer.alloc(5)) }));
  await assert.rejects(decodeTileRgba({ W: 2, H: 2, Encoding: 'Solid', Bytes: new Uint8Array(2) }));
  await assert.rejects(decodeTileRgba({ W: 2, H: 2, Encoding: 'Palette', Bytes: new Uint8Array([9, 1]) }));
  // index 3 with a 2-colour palette (8-bit layout)
  await assert.rejects(decodeTileRgba({ W: 2, H: 2, Encoding: 'Palette', Bytes: Buffer.concat([Buffer.from([1, 0, 0, 0, 1, 1, 1]), deflateSync(Buffer.from([0, 3, 0, 0]))]) }));
});
