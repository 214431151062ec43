// Building the page from data without ever parsing data as HTML: every text goes in through
// text nodes or properties, never parsed as markup.

/**
 * @typedef {Record<string, any>} Attrs
 * @typedef {Node | string | number | null | undefined | false | any[]} Child
 */

/**
 * An element with attributes, properties, listeners (`onclick`: a function) and children.
 * Keys starting with `on` take a listener; `class`, `for`, `aria-*`, `data-*` and other
 * attributes are set as attributes; `value`, `checked`, `disabled`, `hidden` as properties.
 * @param {string} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'hidden') {
        /** @type {any} */ (el)[key] = value;
      } else {
        el.setAttribute(key, value === true ? '' : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

/**
 * @param {Node} parent
 * @param {Child[]} children
 */
function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * Replaces an element's children.
 * @param {Element} el
 * @param {...Child} children
 */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}
