// A4 sheets of trainee badges, drawn by the page and printed by the browser (print CSS): name,
// position, unit and the QR code the field app scans, `diemdanh:person:<person id>` (see
// docs/field-app.md, "Badges"). The QR modules are SVG rectangles built with DOM calls.

import { h } from '/shared/dom.js';
import qrcode from '/vendor/qrcode-generator.mjs';
import { svg } from './ui.js';

/** The text of a trainee's badge code. */
export function badgeText(/** @type {string} */ personId) {
  return `diemdanh:person:${personId.toLowerCase()}`;
}

/** Modules of white around the code, as the QR standard asks. */
const QUIET_ZONE = 4;

/**
 * A QR code as an SVG image.
 * @param {string} text
 * @param {string} label what it encodes, for screen readers
 */
export function qrSvg(text, label) {
  const code = qrcode(0, 'M');
  code.addData(text, 'Byte');
  code.make();
  const count = code.getModuleCount();
  const size = count + QUIET_ZONE * 2;
  // One path of unit squares: far fewer nodes than one rectangle per module.
  let d = '';
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (code.isDark(row, col)) d += `M${col + QUIET_ZONE} ${row + QUIET_ZONE}h1v1h-1z`;
    }
  }
  return svg(
    'svg',
    { viewBox: `0 0 ${size} ${size}`, class: 'qr', role: 'img', 'aria-label': label, 'shape-rendering': 'crispEdges', 'data-qr': text },
    svg('rect', { x: 0, y: 0, width: size, height: size, fill: '#fff' }),
    svg('path', { d, fill: '#000' }),
  );
}

/**
 * @param {string} courseTitle
 * @param {{id: string, name: string, position: string, unit: string}[]} trainees
 */
export function badgeSheet(courseTitle, trainees) {
  return h(
    'div',
    { class: 'badge-sheet', 'data-testid': 'badge-sheet' },
    trainees.map((p) =>
      h(
        'article',
        { class: 'badge', 'data-person': p.id },
        h('p', { class: 'badge-course' }, courseTitle),
        qrSvg(badgeText(p.id), p.name),
        h('p', { class: 'badge-name' }, p.name),
        h('p', { class: 'badge-position' }, p.position),
        h('p', { class: 'badge-unit' }, p.unit),
      ),
    ),
  );
}
