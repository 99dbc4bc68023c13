// VmPortal browser console. Bundled to /console/console.js (+ console.css); mounted by a Blazor page through
// JS interop:  window.vmConsole.mount(element, { vmId, shareToken, readOnly })  → handle with dispose().
// Hub protocol (SignalR over MessagePack at /hubs/console) is documented in docs/console.md.
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { ScreenView } from './screen.js';
import { SerialView } from './serial.js';
import { KeyboardCapture, chunkText, untypable } from './keyboard.js';

const FN_KEYS = Array.from({ length: 12 }, (_, i) => `f${i + 1}`);
const SYSRQ_KEYS = [
  ['s', 'Sync'], ['u', 'Remount read-only'], ['b', 'Reboot'], ['o', 'Power off'], ['e', 'Terminate all'],
  ['i', 'Kill all'], ['k', 'SAK'], ['r', 'Unraw'], ['h', 'Help'], ['t', 'Task list'], ['m', 'Memory'], ['w', 'Blocked tasks'],
];
const POWER = [
  ['start', 'Start', ['Stopped', 'Crashed']],
  ['shutdown', 'Shut down', ['Running', 'Paused']],
  ['poweroff', 'Power off', ['Starting', 'Running', 'Paused', 'Stopping', 'Crashed']],
  ['reset', 'Reset', ['Running', 'Paused']],
  ['pause', 'Pause', ['Running']],
  ['resume', 'Resume', ['Paused']],
];
const STATE_NAMES = ['Stopped', 'Starting', 'Running', 'Paused', 'Stopping', 'Crashed'];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function stateName(s) { return typeof s === 'number' ? STATE_NAMES[s] ?? String(s) : String(s); }

function formatBytes(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}

/** Mounts a console into element. Options: vmId (required), shareToken, readOnly, hubUrl, tab ('screen'|'serial'). */
export function mount(element, options) {
  const opts = { hubUrl: '/hubs/console', tab: 'screen', readOnly: false, shareToken: null, ...options };
  if (!opts.vmId) throw new Error('vmConsole.mount: vmId is required');
  let readOnly = !!opts.readOnly;
  let disposed = false;
  let closed = false; // the server ended this console (share link revoked/expired): no reconnect
  let power = 'Stopped';
  let stats = { bytes: 0, frames: 0, since: performance.now() };
  let keySentAt = 0, lastLatency = null, rtt = null;
  let typing = null;

  // ---------- DOM ----------
  const canvas = el('canvas', { class: 'vmc-canvas', width: 720, height: 400, tabindex: 0, 'aria-label': 'VM screen' });
  const screenBox = el('div', { class: 'vmc-screen vmc-fit' }, canvas);
  const serialBox = el('div', { class: 'vmc-serial', hidden: true });
  const status = el('div', { class: 'vmc-status', role: 'status' });
  const stateBadge = el('span', { class: 'vmc-state' }, '…');
  const conn = el('span', { class: 'vmc-conn' }, 'connecting');
  const perf = el('span', { class: 'vmc-perf' });
  const message = el('span', { class: 'vmc-msg' });
  const roBadge = el('span', { class: 'vmc-ro', hidden: true }, 'view-only');
  status.append(stateBadge, conn, roBadge, perf, message);

  const btn = (label, onclick, title, cls = '') => el('button', { type: 'button', class: `vmc-btn ${cls}`, title: title ?? label, onclick }, label);
  const menu = (label, items) => {
    const sel = el('select', { class: 'vmc-menu', title: label, onchange: () => { const v = sel.value; sel.selectedIndex = 0; if (v) items.find((i) => i[0] === v)?.[2](); } },
      el('option', { value: '' }, label), ...items.map(([v, text]) => el('option', { value: v }, text)));
    return sel;
  };

  const tabScreen = btn('Screen', () => showTab('screen'), 'Screen', 'vmc-tab');
  const tabSerial = btn('Serial', () => showTab('serial'), 'Serial console (COM1)', 'vmc-tab');
  const powerButtons = POWER.map(([action, label, states]) => {
    const b = btn(label, () => doPower(action, label), label, `vmc-power vmc-power-${action}`);
    b.dataset.states = states.join(',');
    return b;
  });
  const mouseToggle = btn('Mouse: capture on click', () => setMouseCapture(!mouseCapture),
    'When on, a click on the screen captures the pointer for the VM\'s PS/2 mouse (Esc releases it)', 'vmc-mouse-toggle');
  const inputTools = el('span', { class: 'vmc-input-tools' },
    btn('Ctrl-Alt-Del', () => special('ctrl-alt-del')),
    menu('Ctrl-Alt-F…', FN_KEYS.map((f) => [f, `Ctrl-Alt-${f.toUpperCase()}`, () => special(`ctrl-alt-${f}`)])),
    menu('Alt-SysRq…', SYSRQ_KEYS.map(([k, text]) => [k, `Alt-SysRq-${k.toUpperCase()} (${text})`, () => special(`alt-sysrq-${k}`)])),
    btn('PrintScreen', () => special('printscreen')),
    btn('Type text…', () => openTypeDialog()),
    btn('Stop typing', () => stopTyping(), 'Drop the typed text the VM has not read yet'),
    mouseToggle,
  );
  const viewTools = el('span', { class: 'vmc-view-tools' },
    menu('View', [
      ['fit', 'Fit to window', () => setScale('fit')],
      ['1:1', '1:1 pixels', () => setScale('1:1')],
      ['full', 'Fullscreen', () => root.requestFullscreen?.()],
    ]),
    btn('Screenshot', () => screenshot(), 'Download the screen as PNG'),
    btn('Copy text', () => copyText(), 'Copy the text-mode screen as plain text'),
  );
  const toolbar = el('div', { class: 'vmc-toolbar' }, tabScreen, tabSerial, el('span', { class: 'vmc-sep' }),
    ...powerButtons, el('span', { class: 'vmc-sep' }), inputTools, el('span', { class: 'vmc-sep' }), viewTools);

  // Type-text dialog.
  const typeArea = el('textarea', { class: 'vmc-type-text', rows: 6, placeholder: 'Text to type on a US keyboard (\\n is Enter)' });
  const typeProgress = el('progress', { class: 'vmc-type-progress', max: 1, value: 0 });
  const typeError = el('div', { class: 'vmc-type-error' });
  const typeGo = btn('Type', () => startTyping());
  const typeCancel = btn('Cancel', () => { if (typing) typing.cancelled = true; else typeDialog.close(); });
  const typeDialog = el('dialog', { class: 'vmc-type-dialog' }, el('h3', {}, 'Type text'), typeArea, typeError, typeProgress,
    el('div', { class: 'vmc-dialog-buttons' }, typeGo, typeCancel));

  const root = el('div', { class: 'vmc-root' }, toolbar, screenBox, serialBox, status, typeDialog);
  element.replaceChildren(root);

  const screen = new ScreenView(canvas, { onError: (e) => showMessage(`screen: ${e.message ?? e}`, true) });
  screen.onFrameDrawn = (f) => {
    stats.frames++;
    if (keySentAt) { lastLatency = performance.now() - keySentAt; keySentAt = 0; }
    canvas.dataset.seq = String(f.Seq);
  };
  let serial = null;

  // ---------- connection ----------
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(opts.hubUrl)
    .withHubProtocol(new MessagePackHubProtocol())
    .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (ctx) => Math.min(10000, 250 * 2 ** ctx.previousRetryCount) })
    .build();
  connection.serverTimeoutInMilliseconds = 30000;

  connection.on('Frame', (frame) => {
    for (const t of frame.Tiles ?? []) stats.bytes += t.Bytes?.length ?? 0;
    screen.push(frame);
  });
  connection.on('Resize', (r) => showMessage(`screen ${r.Width}×${r.Height}${r.TextMode ? ` (text ${r.Columns}×${r.Rows})` : ''}`));
  connection.on('PowerState', (p) => setPower(stateName(p.State), p.Reason));
  connection.on('Bell', () => { root.classList.add('vmc-bell'); setTimeout(() => root.classList.remove('vmc-bell'), 150); });
  connection.on('SerialData', (d) => serial?.write(d.Bytes));
  connection.on('Closed', (c) => {
    closed = true;
    keyboard.releaseAll();
    setConn('closed');
    root.classList.add('vmc-closed');
    showMessage(c?.Reason ?? 'The console was closed by the server.', true, true);
    connection.stop();
  });
  connection.onreconnecting(() => { keyboard.releaseAll(); setConn('reconnecting…'); });
  connection.onreconnected(() => join().catch((e) => { setConn('error'); showMessage(hubMessage(e), true, true); }));
  connection.onclose(() => { if (!disposed && !closed) { setConn('disconnected'); setTimeout(() => start(), 2000); } });

  const hubMessage = (e) => (e?.message ?? String(e)).replace(/^.*HubException: /, '');

  async function join() {
    const info = await connection.invoke('JoinConsole', opts.vmId, opts.shareToken ?? null);
    if (info && (info.ReadOnly ?? info.readOnly)) setReadOnly(true);
    await connection.invoke('RequestFullFrame');
    setConn('connected');
  }

  async function start() {
    if (disposed || closed) return;
    try {
      setConn('connecting');
      await connection.start();
      await join();
    } catch (e) {
      setConn('error');
      showMessage(hubMessage(e), true, true);
      // Refused joins (no rights, unknown VM) are final; connection failures are retried.
      if (connection.state === signalR.HubConnectionState.Connected) return;
      if (!disposed && !closed) setTimeout(start, 3000);
    }
  }

  const invoke = (method, ...args) => {
    if (connection.state !== signalR.HubConnectionState.Connected) return Promise.reject(new Error('not connected'));
    return connection.invoke(method, ...args);
  };
  const send = (method, ...args) => {
    if (connection.state !== signalR.HubConnectionState.Connected) return;
    connection.send(method, ...args).catch((e) => showMessage(e.message, true));
  };

  // ---------- keyboard & mouse ----------
  const keyboard = new KeyboardCapture((code, down) => {
    if (readOnly) return;
    if (down) keySentAt = performance.now();
    send('Key', code, down);
  });
  const onKey = (e) => {
    // Esc releases a captured pointer (the browser does too; this also covers browsers and drivers that deliver the
    // key to the page) and is not passed to the guest.
    if (e.code === 'Escape' && document.pointerLockElement === canvas) {
      e.preventDefault();
      if (e.type === 'keydown') document.exitPointerLock?.();
      return;
    }
    if (!readOnly && !closed && currentTab === 'screen') keyboard.handle(e);
  };
  canvas.addEventListener('keydown', onKey);
  canvas.addEventListener('keyup', onKey);
  canvas.addEventListener('blur', () => keyboard.releaseAll());
  canvas.addEventListener('mousedown', () => canvas.focus());
  const onVisibility = () => { if (document.hidden) keyboard.releaseAll(); };
  document.addEventListener('visibilitychange', onVisibility);
  window.addEventListener('blur', onVisibility);

  // Relative mouse (the VM's PS/2 mouse) while the pointer is locked (Pointer Lock API): a click on the screen
  // captures it when the toolbar toggle is on, Esc (or the toggle) releases it. Motion (movementX/Y) and wheel steps
  // are summed and sent once per animation frame; a button change is sent at once, after the motion before it.
  // Buttons: bit 0 left, 1 right, 2 middle, 3 back, 4 forward (MouseEvent.buttons uses the same bits).
  let mouseCapture = true, mouseButtons = 0, mdx = 0, mdy = 0, wheelPx = 0, wheelSteps = 0, mouseFrame = 0, mouseSent = 0;
  const locked = () => document.pointerLockElement === canvas;
  const counted = () => { mouseSent++; canvas.dataset.mouseSent = String(mouseSent); };
  const sendMouse = (dx, dy, buttons) => { send('Mouse', dx, dy, buttons); counted(); };
  const flushMouse = () => {
    if (mouseFrame) { cancelAnimationFrame(mouseFrame); mouseFrame = 0; }
    if (mdx || mdy) { sendMouse(mdx, mdy, mouseButtons); mdx = mdy = 0; }
    if (wheelSteps) { send('MouseWheel', wheelSteps, mouseButtons); counted(); wheelSteps = 0; }
  };
  const scheduleMouse = () => { if (!mouseFrame) mouseFrame = requestAnimationFrame(() => { mouseFrame = 0; flushMouse(); }); };
  canvas.addEventListener('click', () => {
    if (!readOnly && !closed && mouseCapture && !locked() && power === 'Running') {
      try { const p = canvas.requestPointerLock?.(); p?.catch?.(() => {}); } catch { /* not allowed here */ }
    }
  });
  canvas.addEventListener('mousemove', (e) => {
    if (!locked() || readOnly) return;
    mdx += e.movementX ?? 0; mdy += e.movementY ?? 0;
    scheduleMouse();
  });
  const onButton = (e) => {
    if (!locked() || readOnly) return;
    e.preventDefault();
    flushMouse(); // motion before the click, with the buttons held during it
    mouseButtons = e.buttons & 31;
    sendMouse(0, 0, mouseButtons);
  };
  canvas.addEventListener('mousedown', onButton);
  canvas.addEventListener('mouseup', onButton);
  canvas.addEventListener('contextmenu', (e) => { if (locked()) e.preventDefault(); });
  canvas.addEventListener('wheel', (e) => {
    if (!locked() || readOnly) return;
    e.preventDefault();
    // Lines and pages count as steps; pixels (most mice and touchpads) as one step per 100 px, like a notch.
    if (e.deltaMode === 0) {
      wheelPx += e.deltaY;
      const whole = Math.trunc(wheelPx / 100);
      wheelSteps += whole;
      wheelPx -= whole * 100;
    } else wheelSteps += Math.sign(e.deltaY) * Math.max(1, Math.round(Math.abs(e.deltaY)));
    scheduleMouse();
  }, { passive: false });
  const onLockChange = () => {
    const on = locked();
    root.classList.toggle('vmc-mouse-locked', on);
    canvas.dataset.pointerLocked = on ? 'true' : 'false';
    if (on) showMessage('Mouse captured by the VM: press Esc to release it.', false, true);
    else {
      flushMouse();
      if (mouseButtons) { mouseButtons = 0; sendMouse(0, 0, 0); } // release buttons held when the lock ended
      showMessage('');
    }
  };
  document.addEventListener('pointerlockchange', onLockChange);
  function setMouseCapture(on) {
    mouseCapture = on;
    mouseToggle.setAttribute('aria-pressed', on ? 'true' : 'false');
    mouseToggle.textContent = on ? 'Mouse: capture on click' : 'Mouse: off';
    if (!on && locked()) document.exitPointerLock?.();
  }
  setMouseCapture(true);

  // ---------- actions ----------
  async function special(name) {
    try { await invoke('SpecialKeys', name); canvas.focus(); } catch (e) { showMessage(e.message, true); }
  }

  async function doPower(action, label) {
    if ((action === 'poweroff' || action === 'reset') && !window.confirm(`${label} the VM? Unsaved guest data is lost.`)) return;
    try { await invoke('Power', action); } catch (e) { showMessage(e.message, true); }
  }

  function openTypeDialog() {
    typeError.textContent = '';
    typeProgress.value = 0;
    typeDialog.showModal();
    typeArea.focus();
  }

  async function stopTyping() {
    if (typing) { typing.cancelled = true; return; }
    try { showMessage(`${await invoke('CancelTyping')} pending keystrokes dropped`); } catch (e) { showMessage(e.message, true); }
  }

  async function startTyping() {
    const text = typeArea.value;
    const bad = untypable(text);
    if (bad.length) { typeError.textContent = `Cannot type on a US keyboard: ${bad.slice(0, 20).map((c) => JSON.stringify(c)).join(' ')}`; return; }
    if (text.length > 65536) { typeError.textContent = 'Text is longer than 64 KiB.'; return; }
    const chunks = chunkText(text);
    typing = { cancelled: false };
    typeGo.disabled = true;
    // The server queues the keystrokes and the guest reads them at its own pace: the bar shows what it has read.
    typeProgress.max = Math.max(1, text.length);
    let sent = 0;
    const show = (pending) => { typeProgress.value = Math.max(0, sent - pending); };
    try {
      for (let i = 0; i < chunks.length && !typing.cancelled; i++) {
        const pending = await invoke('TypeText', chunks[i]);
        sent += chunks[i].length;
        show(pending);
      }
      while (!typing.cancelled) {
        const pending = await invoke('TypingPending');
        show(pending);
        if (pending === 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      if (typing.cancelled) {
        const dropped = await invoke('CancelTyping');
        showMessage(`typing cancelled: ${dropped} keystrokes dropped`);
      }
      typeDialog.close();
    } catch (e) {
      typeError.textContent = e.message;
    } finally {
      typing = null;
      typeGo.disabled = false;
      canvas.focus();
    }
  }

  async function screenshot() {
    const blob = await screen.toPngBlob();
    const a = el('a', { href: URL.createObjectURL(blob), download: `vm-${opts.vmId}-${new Date().toISOString().replace(/[:.]/g, '-')}.png` });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  async function copyText() {
    try {
      const text = await invoke('GetScreenText');
      await navigator.clipboard.writeText(typeof text === 'string' ? text : text?.Text ?? '');
      showMessage('screen text copied');
    } catch (e) { showMessage(e.message, true); }
  }

  function setScale(mode) {
    screenBox.classList.toggle('vmc-fit', mode === 'fit');
    screenBox.classList.toggle('vmc-1to1', mode === '1:1');
  }

  let currentTab = 'screen';
  function showTab(tab) {
    currentTab = tab;
    keyboard.releaseAll();
    screenBox.hidden = tab !== 'screen';
    serialBox.hidden = tab !== 'serial';
    tabScreen.classList.toggle('vmc-active', tab === 'screen');
    tabSerial.classList.toggle('vmc-active', tab === 'serial');
    viewTools.hidden = tab !== 'screen';
    inputTools.hidden = readOnly || tab !== 'screen';
    if (tab === 'serial') serial.show(); else canvas.focus();
  }

  function setReadOnly(ro) {
    readOnly = ro;
    root.classList.toggle('vmc-readonly', ro);
    roBadge.hidden = !ro;
    inputTools.hidden = ro || currentTab !== 'screen';
    for (const b of powerButtons) b.hidden = ro;
    if (serial) serial.term.options.disableStdin = ro;
  }

  function setPower(state, reason) {
    power = state;
    stateBadge.textContent = reason ? `${state}: ${reason}` : state;
    stateBadge.dataset.state = state;
    for (const b of powerButtons) b.disabled = !b.dataset.states.split(',').includes(state);
  }

  function setConn(text) { conn.textContent = text; conn.dataset.conn = text; }

  let msgTimer = 0;
  function showMessage(text, error = false, sticky = false) {
    message.textContent = text;
    message.classList.toggle('vmc-error', error);
    clearTimeout(msgTimer);
    if (!sticky) msgTimer = setTimeout(() => { message.textContent = ''; }, error ? 15000 : 5000);
  }

  // Status line: frame rate, bandwidth, key→screen latency, round trip.
  const statsTimer = setInterval(async () => {
    const now = performance.now(), secs = (now - stats.since) / 1000;
    const parts = [`${canvas.width}×${canvas.height}`, `${(stats.frames / secs).toFixed(0)} fps`, `${formatBytes(Math.round(stats.bytes / secs))}/s`];
    if (lastLatency !== null) parts.push(`key→screen ${lastLatency.toFixed(0)} ms`);
    if (rtt !== null) parts.push(`rtt ${rtt.toFixed(0)} ms`);
    perf.textContent = parts.join(' · ');
    stats = { bytes: 0, frames: 0, since: now };
    if (connection.state === signalR.HubConnectionState.Connected) {
      const t0 = performance.now();
      try { await connection.invoke('Ping'); rtt = performance.now() - t0; } catch { rtt = null; }
    }
  }, 2000);

  serial = new SerialView(serialBox, { send: (bytes) => send('SerialInput', bytes), readOnly });
  setReadOnly(readOnly);
  setPower('Stopped');
  showTab(opts.tab === 'serial' ? 'serial' : 'screen');
  start();

  return {
    connection,
    screen,
    get serial() { return serial; },
    get state() { return power; },
    get readOnly() { return readOnly; },
    /** Sends text as keystrokes (same path as the dialog). */
    typeText: (text) => invoke('TypeText', text),
    specialKeys: (name) => invoke('SpecialKeys', name),
    showTab,
    dispose() {
      disposed = true;
      keyboard.releaseAll();
      clearInterval(statsTimer);
      document.removeEventListener('visibilitychange', onVisibility);
      document.removeEventListener('pointerlockchange', onLockChange);
      if (locked()) document.exitPointerLock?.();
      window.removeEventListener('blur', onVisibility);
      serial?.dispose();
      connection.stop();
      element.replaceChildren();
    },
  };
}

const api = { mount, version: 1 };
if (typeof window !== 'undefined') window.vmConsole = api;
export default api;
