// Scanning trainees' QR badges with the camera, offline. A badge holds
// `diemdanh:person:<person id>` (docs/field-app.md). BarcodeDetector where the browser has it;
// otherwise the vendored jsQR decoder in a worker.

const BADGE = /^diemdanh:person:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/**
 * The person id a badge's text names, or null.
 * @param {string} text
 */
export function badgePerson(text) {
  const match = BADGE.exec(text.trim());
  return match ? match[1].toLowerCase() : null;
}

/**
 * @typedef {{stop: () => void}} Scanner
 */

/**
 * Starts the camera into `video` and calls `onText` with the text of every QR code seen.
 * @param {HTMLVideoElement} video
 * @param {(text: string) => void} onText
 * @returns {Promise<Scanner>}
 */
export async function startScanner(video, onText) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: 'environment', width: { ideal: 640 }, height: { ideal: 480 } },
    audio: false,
  });
  video.srcObject = stream;
  video.muted = true;
  video.setAttribute('playsinline', '');
  await video.play();
  const { detect, close } = await detector();
  let stopped = false;
  const canvas = document.createElement('canvas');
  const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d', { willReadFrequently: true }));
  const tick = async () => {
    if (stopped) return;
    if (video.readyState >= 2 && video.videoWidth > 0) {
      try {
        const text = await detect(video, canvas, context);
        if (text && !stopped) onText(text);
      } catch {
        // A frame that cannot be read: try the next one.
      }
    }
    if (!stopped) setTimeout(tick, 150);
  };
  tick();
  return {
    stop() {
      stopped = true;
      close();
      for (const track of stream.getTracks()) track.stop();
      video.srcObject = null;
    },
  };
}

/**
 * @returns {Promise<{detect: (video: HTMLVideoElement, canvas: HTMLCanvasElement,
 *   context: CanvasRenderingContext2D) => Promise<string|null>, close: () => void}>}
 */
async function detector() {
  const Native = /** @type {any} */ (globalThis).BarcodeDetector;
  if (Native && (await Native.getSupportedFormats()).includes('qr_code')) {
    const native = new Native({ formats: ['qr_code'] });
    return {
      detect: async (video) => {
        const codes = await native.detect(video);
        return codes.length ? codes[0].rawValue : null;
      },
      close: () => {},
    };
  }
  const worker = new Worker('/app/qr-worker.js');
  const detect = (/** @type {HTMLVideoElement} */ video, /** @type {HTMLCanvasElement} */ canvas,
    /** @type {CanvasRenderingContext2D} */ context) => {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    context.drawImage(video, 0, 0);
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.postMessage({ width: image.width, height: image.height, data: image.data }, [
        image.data.buffer,
      ]);
    });
  };
  return { detect, close: () => worker.terminate() };
}
