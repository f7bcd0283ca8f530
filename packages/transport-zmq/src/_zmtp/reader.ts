/**
 * Bytes as they arrive from a stream socket, read in pieces without quadratic copying: chunks are
 * kept as they came, a read within one chunk is a view of it, a read across chunks copies once.
 * @module
 */

export class ChunkReader {
  readonly #chunks: Uint8Array[] = [];
  #offset = 0;
  #available = 0;

  /** Bytes not read yet. */
  get available(): number {
    return this.#available;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#available += chunk.length;
  }

  /** The byte `index` places ahead, without reading it (`index` < available). */
  peek(index: number): number {
    let at = this.#offset + index;
    for (const chunk of this.#chunks) {
      if (at < chunk.length) return chunk[at] as number;
      at -= chunk.length;
    }
    throw new RangeError('ChunkReader.peek past the end');
  }

  /** Reads `length` bytes (≤ available): a view when they lie in one chunk, else one copy. */
  read(length: number): Uint8Array {
    if (length > this.#available) throw new RangeError('ChunkReader.read past the end');
    this.#available -= length;
    const first = this.#chunks[0];
    if (first !== undefined && first.length - this.#offset >= length) {
      const view = first.subarray(this.#offset, this.#offset + length);
      this.#offset += length;
      if (this.#offset === first.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
      return view;
    }
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.#chunks[0] as Uint8Array;
      const take = Math.min(chunk.length - this.#offset, length - filled);
      out.set(chunk.subarray(this.#offset, this.#offset + take), filled);
      filled += take;
      this.#offset += take;
      if (this.#offset === chunk.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    return out;
  }
}
