// Microphone tap: collects the input's first channel in 20 ms blocks (render quanta are 128 samples) and
// posts each block to the page as a Float32Array at the AudioContext's sample rate.
class PcmTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = Math.round(sampleRate * 0.02);
    this.buffer = new Float32Array(this.block);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length) {
      const x = input[0];
      let i = 0;
      while (i < x.length) {
        const n = Math.min(x.length - i, this.block - this.filled);
        this.buffer.set(x.subarray(i, i + n), this.filled);
        this.filled += n;
        i += n;
        if (this.filled === this.block) {
          this.port.postMessage(this.buffer, [this.buffer.buffer]);
          this.buffer = new Float32Array(this.block);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-tap", PcmTap);
