// The string catalogue (strings.js) and the chosen language: Vietnamese unless the user picks
// English; dates and times in the language's format.

import { catalogue } from './strings.js';

const KEY = 'diemdanh.lang';

/** @type {'vi'|'en'} */
let lang = localStorage.getItem(KEY) === 'en' ? 'en' : 'vi';
document.documentElement.lang = lang;

export function language() {
  return lang;
}

/** @param {'vi'|'en'} next */
export function setLanguage(next) {
  lang = next;
  localStorage.setItem(KEY, next);
  document.documentElement.lang = next;
}

/**
 * @param {string} key
 * @param {Record<string, string|number>} [values]
 */
export function t(key, values) {
  const text = catalogue[lang][key] ?? catalogue.vi[key] ?? key;
  if (!values) return text;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

/**
 * Whether the catalogue has this key (the server's codes are translated where it does).
 * @param {string} key
 */
export function known(key) {
  return key in catalogue[lang] || key in catalogue.vi;
}

/**
 * An API error code as its reader understands it: the catalogue's words when it has them (the
 * server's messages are English), else the server's message.
 * @param {string|undefined} code
 * @param {string} message
 */
export function codeText(code, message) {
  return code && known(`code.${code}`) ? t(`code.${code}`) : message;
}

const locale = () => (lang === 'vi' ? 'vi-VN' : 'en-GB');

/** Formatters are costly to make: one per language and kind, made when first needed. */
const formatters = new Map();

/**
 * @param {string} kind
 * @param {Intl.DateTimeFormatOptions} options
 * @returns {Intl.DateTimeFormat}
 */
function formatter(kind, options) {
  const key = `${lang}:${kind}`;
  let made = formatters.get(key);
  if (!made) {
    made = new Intl.DateTimeFormat(locale(), options);
    formatters.set(key, made);
  }
  return made;
}

/** @param {string|number|Date} value */
export function formatTime(value) {
  return formatter('time', { hour: '2-digit', minute: '2-digit' }).format(new Date(value));
}

/** @param {string|number|Date} value */
export function formatDateTime(value) {
  return formatter('datetime', {
    weekday: 'short',
    day: '2-digit',
    month: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  }).format(new Date(value));
}

/**
 * When a session runs: its day once and both times when it starts and ends on the same day
 * ("08:00–11:00 CN, 20/12"), else both instants in full.
 * @param {string|number|Date} start
 * @param {string|number|Date} end
 */
export function formatSpan(start, end) {
  const day = formatter('day', { weekday: 'short', day: '2-digit', month: '2-digit' });
  const startDay = day.format(new Date(start));
  if (startDay !== day.format(new Date(end))) return t('time.span_days', { from: formatDateTime(start), to: formatDateTime(end) });
  return t('time.span', { day: startDay, from: formatTime(start), to: formatTime(end) });
}

/** A calendar date (`2026-12-08`) as that day at midnight here, whatever the device's time zone. */
function calendarDay(/** @type {string} */ isoDate) {
  const [y, m, d] = isoDate.split('-').map(Number);
  return new Date(y, m - 1, d);
}

/** A calendar date (`2026-12-08`), shown as written, whatever the device's time zone. */
export function formatDate(/** @type {string} */ isoDate) {
  return formatter('date', { day: '2-digit', month: '2-digit', year: 'numeric' }).format(calendarDay(isoDate));
}

/** A calendar date (`2026-12-20`) spelled out with its weekday: "Chủ Nhật, 20 tháng 12, 2026". */
export function formatDateInWords(/** @type {string} */ isoDate) {
  return formatter('date-words', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }).format(calendarDay(isoDate));
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toLocaleString(locale(), { maximumFractionDigits: unit === 0 ? 0 : 1 })} ${units[unit]}`;
}
