// Keyboard capture for the console: physical keys by KeyboardEvent.code, sent as Key(code, down).
// The server maps codes to PC scancodes; the guest's own layout applies.

/** Codes the server does not know or that must stay with the browser. */
const IGNORED = new Set(['', 'Unidentified', 'Fn', 'FnLock']);

/** Characters "Type text" can send (US layout): printable ASCII, newline, CR, tab, backspace, ESC. */
export const TYPABLE = /^[\x20-\x7e\n\r\t\b\x1b]*$/;

/** Returns the characters of text that cannot be typed (distinct, in order of appearance). */
export function untypable(text) {
  const bad = [];
  for (const ch of text) if (!TYPABLE.test(ch) && !bad.includes(ch)) bad.push(ch);
  return bad;
}

/** Splits text into chunks for TypeText calls (never splitting a CR LF pair). */
export function chunkText(text, size = 32) {
  const chunks = [];
  let i = 0;
  while (i < text.length) {
    let end = Math.min(text.length, i + size);
    if (end < text.length && text[end - 1] === '\r' && text[end] === '\n') end++;
    chunks.push(text.slice(i, end));
    i = end;
  }
  return chunks;
}

/**
 * Tracks held keys and forwards key events. send(code, down) is called for each event to pass to the guest.
 * Held keys are released on releaseAll() (called on blur, visibility change, disconnect).
 */
export class KeyboardCapture {
  constructor(send) {
    this.send = send;
    this.held = new Set();
    this.enabled = true;
  }

  /** Handles a keydown/keyup DOM event; returns true when it was taken (and default prevented). */
  handle(e) {
    if (!this.enabled || IGNORED.has(e.code)) return false;
    const down = e.type === 'keydown';
    e.preventDefault();
    e.stopPropagation();
    if (down) {
      this.held.add(e.code);
      this.send(e.code, true);
    } else if (this.held.delete(e.code)) {
      this.send(e.code, false);
    } else if (e.code === 'PrintScreen') {
      // Some systems deliver only keyup for PrintScreen: send a full press.
      this.send(e.code, true);
      this.send(e.code, false);
    }
    return true;
  }

  /** Releases every held key (in reverse press order). */
  releaseAll() {
    const codes = [...this.held].reverse();
    this.held.clear();
    for (const c of codes) this.send(c, false);
    return codes;
  }
}
