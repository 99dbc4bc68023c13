// The serial console (COM1) in an xterm.js terminal: output from SerialData, input sent with SerialInput.
// xterm.js answers the guest's cursor-position query (ESC[6n, which busybox sends) through onData, so the reply
// reaches the guest like typed input.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';

export class SerialView {
  constructor(element, { send, readOnly }) {
    this.term = new Terminal({
      convertEol: false,
      cursorBlink: true,
      scrollback: 5000,
      fontFamily: 'DejaVu Sans Mono, Menlo, Consolas, monospace',
      fontSize: 14,
      disableStdin: !!readOnly,
      theme: { background: '#000000' },
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(element);
    this.encoder = new TextEncoder();
    this.sub = this.term.onData((data) => { if (!readOnly) send(this.encoder.encode(data)); });
    this.subBin = this.term.onBinary((data) => {
      if (!readOnly) send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
    });
  }

  write(bytes) { this.term.write(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes)); }

  /** Text of the terminal buffer (for tests and "copy"). */
  text() {
    const b = this.term.buffer.active, lines = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n').replace(/\n+$/, '');
  }

  show() { try { this.fit.fit(); } catch { /* not visible yet */ } this.term.focus(); }

  dispose() { this.sub.dispose(); this.subBin.dispose(); this.term.dispose(); }
}
