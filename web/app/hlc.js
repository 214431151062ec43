// The device's hybrid logical clock (api-spec/sync.md, "Hybrid logical clock stamps"): every
// change is stamped when it is made; `l` and `c` are kept durably and never go backwards.

/** @typedef {{l: number, c: number}} ClockState */

const MAX_COUNTER = 0xffff;

/**
 * The stamp of a local change, and the clock after it.
 * @param {ClockState} clock
 * @param {number} wall the device's time in ms
 * @param {string} node the device id
 * @returns {{clock: ClockState, stamp: string}}
 */
export function stamp(clock, wall, node) {
  let { l, c } = clock;
  if (wall > l) {
    l = wall;
    c = 0;
  } else {
    c += 1;
  }
  if (c > MAX_COUNTER) {
    l += 1;
    c = 0;
  }
  return { clock: { l, c }, stamp: format(l, c, node) };
}

/**
 * The clock after seeing a remote stamp (the `server_hlc` of a push answer).
 * @param {ClockState} clock
 * @param {string} remote
 * @param {number} wall
 * @returns {ClockState}
 */
export function merge(clock, remote, wall) {
  const parsed = parse(remote);
  if (!parsed) return clock;
  const { l, c } = clock;
  const newL = Math.max(l, parsed.l, wall);
  let newC;
  if (newL === l && newL === parsed.l) newC = Math.max(c, parsed.c) + 1;
  else if (newL === l) newC = c + 1;
  else if (newL === parsed.l) newC = parsed.c + 1;
  else newC = 0;
  if (newC > MAX_COUNTER) return { l: newL + 1, c: 0 };
  return { l: newL, c: newC };
}

/**
 * @param {number} l
 * @param {number} c
 * @param {string} node
 */
export function format(l, c, node) {
  return `${String(l).padStart(13, '0')}-${c.toString(16).padStart(4, '0')}-${node}`;
}

/**
 * @param {string} text
 * @returns {ClockState|null}
 */
export function parse(text) {
  const match = /^(\d{13})-([0-9a-f]{4})-[A-Za-z0-9_.:-]{1,64}$/.exec(text);
  return match ? { l: Number(match[1]), c: parseInt(match[2], 16) } : null;
}
