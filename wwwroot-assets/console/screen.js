// The console screen: a <canvas> updated by Frame messages, tiles decoded in parallel and drawn together.
import { decodeTileForCanvas, drawTile } from './tiles.js';

export class ScreenView {
  constructor(canvas, { onError } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { alpha: false });
    this.queue = Promise.resolve();
    this.queued = 0;
    this.lastSeq = 0;
    this.onError = onError ?? ((e) => console.error(e));
    this.onFrameDrawn = null;
  }

  /** Queues a frame; frames are drawn strictly in arrival order. */
  push(frame) {
    this.queued++;
    this.queue = this.queue.then(() => this.draw(frame)).catch(this.onError).finally(() => { this.queued--; });
    return this.queue;
  }

  resize(width, height) {
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
      this.ctx.fillStyle = '#000';
      this.ctx.fillRect(0, 0, width, height);
    }
  }

  async draw(frame) {
    const tiles = frame.Tiles ?? [];
    const decoded = await Promise.all(tiles.map(decodeTileForCanvas));
    // Resize only now, so that a resize and the full frame that follows it appear together.
    this.resize(frame.Width, frame.Height);
    for (let i = 0; i < tiles.length; i++) drawTile(this.ctx, tiles[i], decoded[i]);
    this.lastSeq = frame.Seq;
    this.onFrameDrawn?.(frame);
  }

  /** PNG of what the canvas shows. */
  toPngBlob() {
    return new Promise((resolve, reject) =>
      this.canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('no screenshot'))), 'image/png'));
  }
}
