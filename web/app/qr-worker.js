// Decodes QR codes off the page's thread with the vendored jsQR (web/vendor/VENDORED.md), for
// browsers without BarcodeDetector.
/* global jsQR */
importScripts('/vendor/jsQR.js');

self.onmessage = (event) => {
  const { width, height, data } = event.data;
  // @ts-ignore: jsQR is the global the vendored script defines.
  const code = jsQR(data, width, height, { inversionAttempts: 'dontInvert' });
  self.postMessage(code ? code.data : null);
};
