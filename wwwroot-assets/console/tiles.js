// Tile decoding for the console screen. Byte layouts are documented in docs/console.md ("Tile encodings") and
// produced by VmPortal.Core.Console.TileCodec. Pure functions (no DOM) so that node's test runner can check them.

/** Encoding names as the server may send them (enum as string) or as numbers. */
export const Encoding = Object.freeze({ Solid: 0, Rgb: 1, Palette: 2, Png: 3 });

/** Normalises a tile's Encoding field ("Palette" or 2) to a number. */
export function encodingOf(tile) {
  const e = tile.Encoding ?? tile.encoding;
  if (typeof e === 'number') return e;
  if (typeof e === 'string' && e in Encoding) return Encoding[e];
  throw new Error(`unknown tile encoding ${e}`);
}

/** Inflates a zlib (RFC 1950) stream with the browser's DecompressionStream('deflate'). */
export async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Bits per palette index for n colours, when packed. */
export function bitsPerIndex(n) {
  return n <= 2 ? 1 : n <= 4 ? 2 : n <= 16 ? 4 : 8;
}

/**
 * Decodes a Solid, Rgb or Palette tile into RGBA bytes (w*h*4), or returns {solid:[r,g,b]} for Solid tiles.
 * Png tiles are left to createImageBitmap (see decodeTileForCanvas).
 */
export async function decodeTileRgba(tile) {
  const w = tile.W, h = tile.H, b = toBytes(tile.Bytes);
  const enc = encodingOf(tile);
  if (enc === Encoding.Solid) {
    if (b.length !== 3) throw new Error('solid tile must have 3 bytes');
    return { solid: [b[0], b[1], b[2]] };
  }
  const out = new Uint8ClampedArray(w * h * 4);
  if (enc === Encoding.Rgb) {
    const rgb = await inflate(b);
    if (rgb.length !== w * h * 3) throw new Error(`rgb tile inflates to ${rgb.length}, expected ${w * h * 3}`);
    for (let i = 0, o = 0; i < rgb.length; i += 3, o += 4) {
      out[o] = rgb[i]; out[o + 1] = rgb[i + 1]; out[o + 2] = rgb[i + 2]; out[o + 3] = 255;
    }
    return { rgba: out };
  }
  if (enc === Encoding.Palette) {
    const n = b[0] + 1;
    if (b.length < 1 + n * 3) throw new Error('palette tile shorter than its palette');
    const idx = await inflate(b.subarray(1 + n * 3));
    // 8 bits per index when the indices inflate to w*h bytes, else packed (rows start on byte boundaries).
    const bits = idx.length === w * h ? 8 : bitsPerIndex(n);
    const rowBytes = Math.ceil(w * bits / 8);
    if (idx.length !== rowBytes * h) throw new Error(`palette indices inflate to ${idx.length}, expected ${rowBytes * h}`);
    const perByte = 8 / bits, mask = (1 << bits) - 1;
    let o = 0;
    for (let y = 0; y < h; y++) {
      const row = y * rowBytes;
      for (let x = 0; x < w; x++, o += 4) {
        const v = bits === 8 ? idx[row + x] : (idx[row + ((x / perByte) | 0)] >> (8 - bits * (x % perByte + 1))) & mask;
        if (v >= n) throw new Error('palette index out of range');
        const p = 1 + v * 3;
        out[o] = b[p]; out[o + 1] = b[p + 1]; out[o + 2] = b[p + 2]; out[o + 3] = 255;
      }
    }
    return { rgba: out };
  }
  throw new Error('png tiles are decoded by the browser');
}

/** Decodes any tile into something drawable: {solid}, {rgba} or {bitmap} (ImageBitmap, for Png). */
export async function decodeTileForCanvas(tile) {
  if (encodingOf(tile) === Encoding.Png) {
    const bitmap = await createImageBitmap(new Blob([toBytes(tile.Bytes)], { type: 'image/png' }));
    return { bitmap };
  }
  return decodeTileRgba(tile);
}

/** Draws decoded tiles onto a 2D context. */
export function drawTile(ctx, tile, decoded) {
  if (decoded.solid) {
    const [r, g, b] = decoded.solid;
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(tile.X, tile.Y, tile.W, tile.H);
  } else if (decoded.bitmap) {
    ctx.drawImage(decoded.bitmap, tile.X, tile.Y);
    decoded.bitmap.close();
  } else {
    ctx.putImageData(new ImageData(decoded.rgba, tile.W, tile.H), tile.X, tile.Y);
  }
}

function toBytes(b) {
  if (b instanceof Uint8Array) return b;
  if (Array.isArray(b)) return Uint8Array.from(b);
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  throw new Error('tile bytes missing');
}
