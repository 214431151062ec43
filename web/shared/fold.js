// Vietnamese text as people type it: "nguyen van a" finds "Nguyễn Văn A". The same folding as
// the server's (src/domain/text.rs): lower case, no diacritics, đ → d, single spaces.

/**
 * @param {string} text
 * @returns {string}
 */
export function fold(text) {
  return text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[đĐ]/g, 'd')
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .join(' ');
}

/**
 * Rosters are ordered by given name (the last word), then by the whole name, as the server
 * orders them.
 * @param {string} fullName
 * @returns {string}
 */
export function personSortKey(fullName) {
  const folded = fold(fullName);
  const given = folded.split(' ').pop() || '';
  return `${given} ${folded}`;
}

/**
 * Whether every word typed appears in the name, in any order and with or without diacritics.
 * @param {string} query
 * @param {string} foldedName
 */
export function matchesQuery(query, foldedName) {
  const words = fold(query).split(' ').filter(Boolean);
  return words.every((word) => foldedName.includes(word));
}
