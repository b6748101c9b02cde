// xdeploy.mjs: run an xdeploy_nb bundle (manifest.json + model.onnx + preprocess.onnx) in a browser with
// onnxruntime-web, or in Node with onnxruntime-node. No dependencies of its own: the caller passes the `ort` it
// loaded (in Node, onnxruntime-node is imported when none is given). Written and tested in the xdeploy_nb repo
// (xdeploy_nb/js); `xdeploy web` copies it into the static site it writes. API: see the docs page "The JS module".

export const VERSION = '0.0.1';
export const SPEC_VERSION = 1;  // the newest preprocessing spec this module reads (xdeploy_nb.preprocess.SPEC_VERSION)
// How far a device other than the CPU/wasm may be from the CPU's outputs on the bundle's sample: the manifest records it
// per artifact (`artifact.sample_tolerance`, the Python runtime's `Variant.sample_tolerance`); where it does not, the
// strictest (fp32's), which can only make 'auto' choose the CPU.
export const DEFAULT_SAMPLE_TOLERANCE = 1e-3;
// The largest manifest.json read, in bytes: Python's `xdeploy_nb.core.MANIFEST_MAX_BYTES` (a file is never read whole
// before its size is known to be sane: /dev/zero or a FIFO as manifest.json is refused, not read until memory runs out).
export const MANIFEST_MAX_BYTES = 64 * 1024 * 1024;
// The deepest nesting of JSON values read from manifest.json (a manifest is ~8 deep): deeper is refused, not recursed into.
export const MAX_JSON_DEPTH = 64;
const F32_MAX = 3.4028234663852886e38;
const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

/** An error that says what is wrong (`problem`) and what to do about it (`fix`), like Python's XDeployError. */
export class XDeployError extends Error {
  constructor(problem, fix = '') {
    super(fix ? `${problem} ${fix}` : problem);
    this.name = 'XDeployError'; this.problem = problem; this.fix = fix;
  }
}

// ---------------------------------------------------------------- JSON Schema (the subset manifest.schema.json uses)
// An integer is one a double holds exactly (|v| <= 2**53 - 1): 1e39 is a number, not an integer (Python reads it as a float).
const typeOf = v => v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isSafeInteger(v) ? 'integer' : 'number') : typeof v;
const typeFits = (t, v) => { const a = typeOf(v); return t === a || (t === 'number' && a === 'integer'); };
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** The errors of `value` against `schema` (a list of "path: problem" strings; empty when valid). Supports the keywords
 * manifest.schema.json uses (Draft 2020-12): type, enum, const, properties, required, additionalProperties, items,
 * minItems, maxItems, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern, anyOf, oneOf. */
export function schemaErrors(schema, value, path = '$', depth = 0) {
  if (schema === true || schema === undefined) return [];
  if (depth > MAX_JSON_DEPTH) return [`${path}: is nested more than ${MAX_JSON_DEPTH} deep`];
  if (schema === false) return [`${path}: is not allowed`];
  const errs = [], v = value;
  if (schema.type !== undefined) {
    const ts = [].concat(schema.type);
    if (!ts.some(t => typeFits(t, v))) return [`${path}: is ${typeOf(v)}, not ${ts.join(' or ')}`];
  }
  if ('const' in schema && !same(schema.const, v)) errs.push(`${path}: must be ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.some(e => same(e, v))) errs.push(`${path}: ${JSON.stringify(v)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof v === 'number') {
    if (schema.minimum !== undefined && v < schema.minimum) errs.push(`${path}: ${v} < ${schema.minimum}`);
    if (schema.maximum !== undefined && v > schema.maximum) errs.push(`${path}: ${v} > ${schema.maximum}`);
    if (schema.exclusiveMinimum !== undefined && v <= schema.exclusiveMinimum) errs.push(`${path}: ${v} <= ${schema.exclusiveMinimum}`);
    if (schema.exclusiveMaximum !== undefined && v >= schema.exclusiveMaximum) errs.push(`${path}: ${v} >= ${schema.exclusiveMaximum}`);
  }
  if (typeof v === 'string') {
    const n = [...v].length;
    if (schema.minLength !== undefined && n < schema.minLength) errs.push(`${path}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && n > schema.maxLength) errs.push(`${path}: longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(v)) errs.push(`${path}: does not match ${schema.pattern}`);
  }
  if (Array.isArray(v)) {
    if (schema.minItems !== undefined && v.length < schema.minItems) errs.push(`${path}: fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && v.length > schema.maxItems) errs.push(`${path}: more than ${schema.maxItems} items`);
    if (schema.items !== undefined) v.forEach((x, i) => errs.push(...schemaErrors(schema.items, x, `${path}[${i}]`, depth + 1)));
  }
  if (typeOf(v) === 'object') {
    // own properties only: `k in props` would find constructor, __proto__, toString... on the prototype chain
    for (const k of schema.required || []) if (!Object.hasOwn(v, k)) errs.push(`${path}: has no ${JSON.stringify(k)}`);
    const props = schema.properties || {};
    for (const [k, x] of Object.entries(v)) {
      if (Object.hasOwn(props, k)) errs.push(...schemaErrors(props[k], x, `${path}.${k}`, depth + 1));
      else if (schema.additionalProperties !== undefined) {
        if (schema.additionalProperties === false) errs.push(`${path}: unknown field ${JSON.stringify(k)}`);
        else errs.push(...schemaErrors(schema.additionalProperties, x, `${path}.${k}`, depth + 1));
      }
    }
  }
  if (schema.anyOf) {
    const all = schema.anyOf.map(s => schemaErrors(s, v, path, depth));
    if (!all.some(e => !e.length)) errs.push(...closest(all, path));
  }
  if (schema.oneOf) {
    const all = schema.oneOf.map(s => schemaErrors(s, v, path, depth)), ok = all.filter(e => !e.length).length;
    if (ok === 0) errs.push(...closest(all, path));
    else if (ok > 1) errs.push(`${path}: matches ${ok} of the alternatives, not exactly one`);
  }
  return errs;
}
// The errors of the alternative that came closest (fewest errors, ignoring a wrong discriminator such as `op`).
function closest(all, path) {
  const matched = all.filter(e => !e.some(s => s.includes(': must be ')));
  const best = (matched.length ? matched : all).reduce((a, b) => b.length < a.length ? b : a);
  return best.length ? best : [`${path}: matches none of the alternatives`];
}

/** Check `manifest` against the bundle schema (`manifest.schema.json`) and what a runtime relies on beyond it; throw an
 * XDeployError naming the first problems, else return the manifest. */
export function validateManifest(manifest, schema) {
  const errs = schemaErrors(schema, manifest);
  if (errs.length) throw new XDeployError(`manifest.json does not match the bundle schema: ${errs.slice(0, 3).join('; ')}${errs.length > 3 ? ` (and ${errs.length - 3} more)` : ''}.`,
    'Re-export the bundle with xdeploy_nb, or use a version of this module that knows its schema_version.');
  const bad = p => new XDeployError(`manifest.json: ${p}.`, 'Re-export the bundle with this version of xdeploy_nb.');
  const pre = manifest.preprocessing, spec = pre.spec, ins = manifest.inputs, outs = manifest.outputs;
  if (!spec || typeof spec !== 'object') throw bad("preprocessing has no 'spec', so inputs cannot be prepared");
  if ((spec.version ?? 0) > SPEC_VERSION) throw new XDeployError(`manifest.json: the preprocessing spec has version ${spec.version}; this module reads up to ${SPEC_VERSION}.`, 'Use a newer xdeploy.mjs (`xdeploy web` writes the one that matches your xdeploy_nb).');
  if (pre.kind === 'image') {
    if (ins.length !== 1 || ins[0].dtype !== 'uint8' || ins[0].shape.length !== 4 || (ins[0].layout ?? 'NCHW') !== 'NCHW') throw bad('an image bundle has one uint8 input of shape [batch, C, H, W], layout NCHW');
  } else {
    const names = ins.map(i => `${i.name}:${i.dtype}`).sort().join(',');
    if (names !== 'x_cat:int64,x_cont:float32') throw bad('a tabular bundle has the inputs x_cat (int64) and x_cont (float32)');
    if (ins.some(i => i.shape.length !== 2)) throw bad('a tabular bundle has the inputs x_cat (int64 [batch, n_cat]) and x_cont (float32 [batch, n_cont])');
    const width = Object.fromEntries(ins.map(i => [i.name, i.shape[1]]));
    for (const k of ['x_cat', 'x_cont']) if (Number.isInteger(width[k]) && width[k] !== spec[k].length) throw bad(`${k} has ${width[k]} columns, but the spec names ${spec[k].length}`);
    for (const c of spec.x_cat) if ((Object.hasOwn(spec.categories, c) ? spec.categories[c] : [])[0] !== '#na#') throw bad(`the category column ${JSON.stringify(c)} has no vocabulary starting with '#na#'`);
    const fills = spec.fill_missing.filter(f => !spec.x_cont.includes(f.column) || (f.flag && !spec.x_cat.includes(f.flag)));
    const known = new Set([...spec.columns, ...spec.fill_missing.map(f => f.flag).filter(Boolean)]);
    const orphan = [...spec.x_cat, ...spec.x_cont].find(c => !known.has(c) || (spec.x_cont.includes(c) && !spec.columns.includes(c)));
    if (orphan !== undefined) throw bad(`the model column ${JSON.stringify(orphan)} is neither a column of the rows nor the flag of a fill_missing entry`);
    if (fills.length) throw bad(`fill_missing names ${JSON.stringify(fills[0].column)}, which is not a continuous column (or its flag not a category column)`);
  }
  if (outs.length !== 1 || outs[0].shape.length !== 2) throw bad('a bundle has one output, of shape [batch, n]');
  const n = outs[0].shape[1];
  if ((manifest.labels.length || manifest.task !== 'regression') && Number.isInteger(n) && n !== manifest.labels.length) throw bad(`the output has ${n} values per item but there are ${manifest.labels.length} labels`);
  return manifest;
}

// ---------------------------------------------------------------- files, hashes, sample.npz
/** The lowercase hex sha256 of `bytes` (Web Crypto: browsers in a secure context — https or 127.0.0.1 — and Node). */
export async function sha256Hex(bytes) {
  const subtle = globalThis.crypto?.subtle ?? (isNode ? (await import('node:crypto')).webcrypto.subtle : undefined);  // Node 18: not global
  if (!subtle) throw new XDeployError('Web Crypto (crypto.subtle) is not available, so the model files cannot be checked.',
    'Serve the page over https, or from localhost/127.0.0.1 (browsers offer Web Crypto only in secure contexts).');
  const h = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(h, b => b.toString(16).padStart(2, '0')).join('');
}

/** A reader of the bundle's files: `read(name, cap) -> Uint8Array`, from a URL (fetch) or, in Node, a folder path. Each
 * file is read as a regular file inside the bundle folder (Node: no symlink out of it, no device, FIFO or folder), and
 * never more than `cap` bytes of it: a file that has more is refused, not read until memory runs out. */
export function bundleReader(source) {
  const isUrl = source instanceof URL || /^[a-z][a-z0-9+.-]*:\/\//i.test(String(source)) || !isNode;
  if (isUrl) {
    const base = new URL(String(source).endsWith('/') ? String(source) : `${source}/`, globalThis.location?.href);
    return async (name, cap = Infinity) => {
      const url = new URL(name, base);
      let r;
      try { r = await fetch(url); } catch (e) { throw new XDeployError(`Could not fetch ${url}: ${e.message}.`, 'Check that the bundle is served next to the page.'); }
      if (!r.ok) throw new XDeployError(`Could not fetch ${url}: HTTP ${r.status}.`, 'Check that the bundle folder holds that file.');
      return readCapped(r, cap, name);
    };
  }
  return (name, cap = Infinity) => readFileIn(String(source), name, cap);
}

const tooBig = (name, cap) => new XDeployError(`${name} has more than ${cap} bytes, ${name === 'manifest.json' ? 'the most a manifest.json may have' : 'the size manifest.json gives it'}.`,
  'The bundle is damaged or was changed: copy it again, or re-export it.');

// A fetch response's body, refused past `cap` bytes (a server that streams without end is cut off, not buffered).
async function readCapped(r, cap, name) {
  if (Number(r.headers.get('content-length')) > cap) throw tooBig(name, cap);
  if (!r.body?.getReader) { const b = new Uint8Array(await r.arrayBuffer()); if (b.length > cap) throw tooBig(name, cap); return b; }
  const reader = r.body.getReader(), parts = [];
  let total = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    total += value.length;
    if (total > cap) { await reader.cancel(); throw tooBig(name, cap); }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

// Node: `name` in the folder `dir`, opened as a regular file inside it and read up to `cap` bytes (one more to see a larger file).
async function readFileIn(dir, name, cap) {
  const [fs, path] = await Promise.all([import('node:fs/promises'), import('node:path')]);
  const missing = e => new XDeployError(`Could not read ${name} in the bundle ${dir}: ${e.code || e.message}.`, name === 'manifest.json'
    ? 'Pass the folder that holds manifest.json.' : 'Copy the whole bundle folder, or re-export it.');
  const notRegular = why => new XDeployError(`${name} in the bundle ${dir} is not a regular file inside the bundle folder (${why}), so it is not read.`,
    'Copy the bundle as plain files (e.g. `cp -rL`, or from the archive it came in), or re-export it.');
  let root, real;
  try { root = await fs.realpath(dir); real = await fs.realpath(path.join(root, name)); } catch (e) { throw missing(e); }
  if (path.dirname(real) !== root) throw notRegular(`it leads to ${real}`);
  let fh;
  try { fh = await fs.open(real, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0)); } catch (e) { throw missing(e); }  // O_NONBLOCK: a FIFO does not block the open
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a plain file');
    if (st.size > cap) throw tooBig(name, cap);
    const buf = new Uint8Array(Math.min(st.size, cap) + 1);
    let n = 0;
    for (;;) {
      const {bytesRead} = await fh.read(buf, n, buf.length - n, n);
      if (!bytesRead) break;
      n += bytesRead;
      if (n === buf.length) throw tooBig(name, Math.min(st.size, cap));  // it grew since stat: not what was measured
    }
    return buf.subarray(0, n);
  } finally { await fh.close(); }
}

/** `manifest.json`'s bytes as a value, read as Python's `read_manifest` reads them: at most `MANIFEST_MAX_BYTES`, strict
 * UTF-8, strict JSON (no NaN or Infinity, no number beyond a double, no integer beyond 2**53), no key twice in one object (parsers disagree on
 * which one wins), nested at most `MAX_JSON_DEPTH` deep; else an XDeployError naming manifest.json. */
export function parseManifest(bytes) {
  const bad = why => new XDeployError(`manifest.json is not valid JSON (${why}).`, 'Re-export the bundle; the file is damaged.');
  if (bytes.length > MANIFEST_MAX_BYTES) throw tooBig('manifest.json', MANIFEST_MAX_BYTES);
  let text;
  try { text = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true}).decode(bytes); } catch { throw bad('it is not UTF-8: invalid bytes'); }
  return parseJson(text, bad);
}

// A strict JSON parser with a depth limit that refuses duplicate keys (JSON.parse lets the last one win).
function parseJson(text, bad) {
  let i = 0;
  const at = what => bad(`${what} at character ${i}`);
  const ws = () => { for (let c = text.charCodeAt(i); c === 32 || c === 9 || c === 10 || c === 13; c = text.charCodeAt(++i)); };
  const str = () => {
    const start = i++;
    for (let c; (c = text.charCodeAt(i)) !== 34; i++) {
      if (Number.isNaN(c) || c < 32) throw at(Number.isNaN(c) ? 'an unterminated string' : 'a control character in a string');
      if (c === 92) i++;
    }
    i++;
    try { return JSON.parse(text.slice(start, i)); } catch { throw at('a bad escape in a string'); }
  };
  const word = (w, v) => { if (!text.startsWith(w, i)) throw at(`unexpected ${JSON.stringify(text.slice(i, i + 8))}`); i += w.length; return v; };
  const NUM = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = depth => {
    if (depth > MAX_JSON_DEPTH) throw bad(`values nested more than ${MAX_JSON_DEPTH} deep`);
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      const obj = c === '{', out = obj ? {} : [], end = obj ? '}' : ']', seen = new Set();
      i++; ws();
      if (text[i] === end) { i++; return out; }
      for (;;) {
        ws();
        if (obj) {
          if (text[i] !== '"') throw at('expected a key');
          const k = str();
          if (seen.has(k)) throw bad(`the key ${JSON.stringify(k).slice(0, 80)} appears twice in one object, and readers differ on which one counts`);
          seen.add(k); ws();
          if (text[i++] !== ':') throw at("expected ':'");
          Object.defineProperty(out, k, {value: value(depth + 1), enumerable: true, writable: true, configurable: true});  // '__proto__' too, as an own key
        } else out.push(value(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === end) { i++; return out; }
        throw at(`expected ',' or '${end}'`);
      }
    }
    if (c === '"') return str();
    if (c === 't') return word('true', true);
    if (c === 'f') return word('false', false);
    if (c === 'n') return word('null', null);
    NUM.lastIndex = i;
    const m = NUM.exec(text);
    if (!m) throw at(c === undefined ? 'unexpected end of the file' : `unexpected ${JSON.stringify(text.slice(i, i + 8))}`);
    i = NUM.lastIndex;
    const x = Number(m[0]);
    if (!Number.isFinite(x)) throw at(`the number ${m[0].slice(0, 40)}, beyond a double`);
    if (/^-?\d+$/.test(m[0]) && !Number.isSafeInteger(x)) throw at(`the integer ${m[0].slice(0, 40)} is beyond 2**53 - 1, which not every JSON reader holds exactly`);
    return x;
  };
  const v = value(0);
  ws();
  if (i < text.length) throw at('extra data after the value');
  return v;
}

/** Read `entry` ({file, sha256, size}), at most its `size` bytes, and check its size and sha256: load what was hashed. */
export async function readChecked(read, entry) {
  const data = await read(entry.file, entry.size ?? Infinity);
  if (entry.size !== undefined && data.length !== entry.size) throw new XDeployError(`${entry.file} has ${data.length} bytes, but manifest.json says ${entry.size}.`, 'The bundle is incomplete or was changed: copy it again, or re-export it.');
  const h = await sha256Hex(data);
  if (h !== entry.sha256) throw new XDeployError(`${entry.file} has sha256 ${h.slice(0, 12)}..., but manifest.json says ${entry.sha256.slice(0, 12)}...`, 'The file was changed or damaged: copy the bundle again, or re-export it.');
  return data;
}

const NPY_TYPES = {'<f4': Float32Array, '|u1': Uint8Array, '<u1': Uint8Array, '<i8': BigInt64Array, '<f8': Float64Array, '|b1': Uint8Array};
/** The arrays of an uncompressed .npz file (numpy.savez): `{name: {data, shape, dtype}}`. */
export function readNpz(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), out = {};
  let eocd = bytes.length - 22;
  while (eocd >= 0 && dv.getUint32(eocd, true) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new XDeployError('sample.npz is not a zip file.', 'Re-export the bundle.');
  let p = dv.getUint32(eocd + 16, true);
  for (let k = 0, n = dv.getUint16(eocd + 10, true); k < n; k++) {
    const method = dv.getUint16(p + 10, true), size = dv.getUint32(p + 20, true), nameLen = dv.getUint16(p + 28, true);
    const extra = dv.getUint16(p + 30, true), comment = dv.getUint16(p + 32, true), local = dv.getUint32(p + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    if (method !== 0) throw new XDeployError(`sample.npz: ${name} is compressed.`, 'Re-export the bundle (xdeploy_nb writes it uncompressed).');
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    out[name.replace(/\.npy$/, '')] = readNpy(bytes.subarray(start, start + size));
    p += 46 + nameLen + extra + comment;
  }
  return out;
}
function readNpy(b) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength), major = b[6];
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true), hstart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(b.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1], shape = JSON.parse(`[${/'shape':\s*\(([^)]*)\)/.exec(header)[1].replace(/,\s*$/, '')}]`);
  if (/'fortran_order':\s*True/.test(header) || !NPY_TYPES[descr]) throw new XDeployError(`sample.npz holds an array of type ${descr} this module cannot read.`, 'Re-export the bundle.');
  const T = NPY_TYPES[descr], raw = b.slice(hstart + hlen);  // a copy: aligned for the typed array
  return {data: new T(raw.buffer, 0, raw.byteLength / T.BYTES_PER_ELEMENT), shape, dtype: descr};
}

// ---------------------------------------------------------------- tabular rows (manifest.preprocessing.spec)
// A value in a message: BigInt and Infinity as themselves (JSON.stringify throws on the one and writes null for the other).
const show = v => typeof v === 'bigint' ? `${v}n` : typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
const isMissing = v => v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
const catKey = v => `${typeof v === 'boolean' ? 'b' : typeof v === 'number' || typeof v === 'bigint' ? 'n' : 's'}:${v}`;
const NUMBER = /^[+-]?((\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d+)?|inf(inity)?|nan)$/i;  // what Python's float() reads

function toNumber(v, col, i) {
  if (isMissing(v)) return NaN;
  let x;
  if (typeof v === 'number') x = v;
  else if (typeof v === 'boolean') x = +v;
  else if (typeof v === 'bigint') x = Number(v);
  else if (typeof v === 'string' && NUMBER.test(v.trim()) && !/(^|[^\d])_|_($|[^\d])/.test(v.trim())) {
    const t = v.trim().replace(/_/g, '').toLowerCase();
    x = /nan$/.test(t) ? NaN : /inf/.test(t) ? (t.startsWith('-') ? -Infinity : Infinity) : Number(t);
  } else throw new XDeployError(`Row ${i}: column ${JSON.stringify(col)} is ${show(v)}, which is not a number.`, `Pass a number (or null if unknown) for ${JSON.stringify(col)}.`);
  if (Number.isNaN(x)) return x;
  if (!(Math.abs(x) <= F32_MAX)) throw new XDeployError(`Row ${i}: column ${JSON.stringify(col)} is ${show(v)}, which is not a finite number that float32 can hold (|x| <= 3.4e38).`, `Pass a finite number (or null if unknown) for ${JSON.stringify(col)}.`);
  return x;
}

function catCode(index, v, col, i) {
  if (isMissing(v)) return 0;
  if (!['string', 'number', 'boolean', 'bigint'].includes(typeof v)) throw new XDeployError(`Row ${i}: column ${JSON.stringify(col)} is ${show(v)}, which is not a category value.`, `Pass a string or a number (or null if unknown) for ${JSON.stringify(col)}.`);
  return index.get(catKey(v)) ?? 0;
}

/** Fill and encode `rows` (an object per row, column -> value; null for unknown) as fastai's procs do, by the
 * manifest's tabular spec: `{x_cat: BigInt64Array [n * n_cat], x_cont: Float32Array [n * n_cont], n}`. The same rules
 * as Python's `xdeploy_nb.preprocess.prepare_rows` (fill_missing, then categories; normalize is in the graph). */
export function prepareRows(rows, spec, first = 0) {
  rows = Array.isArray(rows) ? rows : [rows];
  if (!rows.every(r => r && typeof r === 'object' && !Array.isArray(r))) throw new XDeployError('Tabular rows must be objects (column -> value).', "Pass {island: 'Biscoe', bill_length_mm: 40.1, ...} per row.");
  const fills = new Map(spec.fill_missing.map(f => [f.column, f]));
  const index = Object.fromEntries(Object.entries(spec.categories).map(([c, vocab]) => [c, new Map(vocab.map((v, j) => [catKey(v), j]).filter(([, j]) => j > 0))]));
  const nCat = spec.x_cat.length, nCont = spec.x_cont.length;
  const x_cat = new BigInt64Array(rows.length * nCat), x_cont = new Float32Array(rows.length * nCont);
  rows.forEach((row, k) => {
    const i = first + k, missing = spec.columns.filter(c => !Object.hasOwn(row, c));
    if (missing.length) throw new XDeployError(`Row ${i} has no column ${JSON.stringify(missing[0])}${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}.`, `Give every row the columns ${JSON.stringify(spec.columns)} (null for an unknown value).`);
    const vals = {...row};
    spec.x_cont.forEach((c, j) => {
      let v = toNumber(row[c], c, i);
      const f = fills.get(c);
      if (Number.isNaN(v)) {
        if (!f) throw new XDeployError(`Row ${i}: column ${JSON.stringify(c)} is missing, and the training data had no missing values there to learn a fill from.`, `Pass a value for ${JSON.stringify(c)}, or retrain with missing values in that column.`);
        v = f.value;
        if (f.flag) vals[f.flag] = true;
      } else if (f?.flag) vals[f.flag] = false;
      x_cont[k * nCont + j] = v;
    });
    spec.x_cat.forEach((c, j) => { x_cat[k * nCat + j] = BigInt(catCode(index[c], vals[c], c, i)); });
  });
  return {x_cat, x_cont, n: rows.length};
}

// ---------------------------------------------------------------- images
/** Pixels as the preprocessing graph takes them: an H x W x C uint8 array in `mode` ('RGB': C = 3, 'L': C = 1), from
 * decoded `{data, width, height, channels}` with 1, 2 (LA), 3 or 4 (RGBA) channels. As Pillow's convert: alpha is
 * dropped, not composited; L = (19595*R + 38470*G + 7471*B + 32768) >> 16; an L image in RGB repeats its value. */
export function toMode(px, mode) {
  const {data, width, height, channels = 4} = checkPixels(px, [1, 2, 3, 4]);
  const n = width * height, C = mode === 'L' ? 1 : 3, out = new Uint8Array(n * C);
  for (let p = 0; p < n; p++) {
    const s = p * channels;
    const r = data[s], g = channels <= 2 ? r : data[s + 1], b = channels <= 2 ? r : data[s + 2];
    if (C === 1) out[p] = channels <= 2 ? r : (19595 * r + 38470 * g + 7471 * b + 32768) >>> 16;
    else { out[3 * p] = r; out[3 * p + 1] = g; out[3 * p + 2] = b; }
  }
  return out;
}

const typeName = x => x === null ? 'null' : Array.isArray(x) ? 'an Array' : typeof x === 'object' ? (x.constructor?.name ?? 'an object') : typeof x;

/** `px` ({data, width, height, channels}) if it is an image: whole width and height of at least 1, `channels` one of
 * `allowed`, `data` uint8 (a Uint8Array, Uint8ClampedArray or Buffer) of width*height*channels values; else the
 * XDeployError Python's Predictor gives for such an array (a Float32Array is not truncated, 300 does not wrap to 44). */
export function checkPixels(px, allowed = [1, 3]) {
  const {data, width, height, channels = 4} = px ?? {};
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new XDeployError(
    `an image of ${show(width)} x ${show(height)} pixels is not an image: width and height are whole numbers of at least 1.`, 'Pass {data, width, height, channels} with the image\'s size in pixels.');
  if (!allowed.includes(channels)) throw new XDeployError(`the preprocessing graph takes ${allowed.length === 1 ? `${allowed[0]} channel(s)` : `${allowed.join(', ')} channels`}, not pixels with channels = ${show(channels)}.`,
    allowed.length === 1 ? `Convert them first: ${allowed[0] === 3 ? 'RGB (alpha dropped)' : 'L (grey)'}, as Pillow's img.convert does, or pass the image file.` : 'Pass 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels.');
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) throw new XDeployError(
    `image pixels are uint8 (0-255), not ${typeName(data)}.`, 'Pass a Uint8Array (or Uint8ClampedArray, Buffer): e.g. Uint8Array.from(x, v => Math.round(v * 255)) for floats in [0, 1]; values outside 0..255 are not pixels.');
  if (data.length !== width * height * channels) throw new XDeployError(
    `The pixels are ${data.length} values for ${width} x ${height} x ${channels}.`, 'Pass {data, width, height, channels} with data.length = width*height*channels.');
  return px;
}

const tooManyPixels = (px, max) => new XDeployError(`The image has ${px.width} x ${px.height} pixels, more than the ${max} this predictor accepts (a guard against decompression bombs).`,
  'Pass a smaller image, or a larger maxPixels to load() if you trust where the images come from.');
const isPixels = x => x && typeof x === 'object' && !ArrayBuffer.isView(x) && !(x instanceof ArrayBuffer) && 'data' in x && !(globalThis.Blob && x instanceof Blob);
let sharpModule;

// Node: an image file (a path, or its bytes) decoded by sharp (libvips) as Pillow decodes it: the raw pixels, no colour
// management (an embedded ICC profile is ignored), no EXIF rotation (Pillow's Image.open does not apply it), the first
// frame. What Pillow would decode otherwise (16-bit samples, which it clips where libvips scales; CMYK) is refused.
async function decodeNode(item, maxPixels) {
  sharpModule ??= await import('sharp').then(m => m.default, () => null);
  if (!sharpModule) throw new XDeployError('This Node has no image decoder: the npm package sharp is not installed.', 'npm install sharp (an optional dependency of this module), or decode the image yourself and pass {data, width, height, channels}.');
  let input = item;
  if (typeof item === 'string' || item instanceof URL) {
    const {stat} = await import('node:fs/promises');
    let st;
    try { st = await stat(item); } catch (e) { throw new XDeployError(e.code === 'ENOENT' ? 'there is no such file.' : `the image could not be read (${e.code || e.message}).`, 'Check the path.'); }
    if (!st.isFile()) throw new XDeployError('this is not a regular file (a folder, a device or a pipe).', 'Pass an image file.');
    input = item instanceof URL ? (await import('node:url')).fileURLToPath(item) : item;
  } else if (globalThis.Blob && item instanceof Blob) input = new Uint8Array(await item.arrayBuffer());
  else if (item instanceof ArrayBuffer) input = new Uint8Array(item);
  const opts = {ignoreIcc: true, autoOrient: false, failOn: 'warning', limitInputPixels: false, pages: 1};
  try {
    const meta = await sharpModule(input, opts).metadata();
    if (meta.width * meta.height > maxPixels) throw tooManyPixels(meta, maxPixels);
    if (!['uchar', 'char'].includes(meta.depth) || !['srgb', 'b-w', 'rgb'].includes(meta.space ?? 'srgb')) throw new XDeployError(
      `this ${meta.format} image has ${meta.depth} samples in ${meta.space}, which Pillow and libvips decode differently.`, 'Convert it to an 8-bit RGB or grey PNG or JPEG first.');
    const {data, info} = await sharpModule(input, opts).raw({depth: 'uchar'}).toBuffer({resolveWithObject: true});
    return {data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels, decoded: true};
  } catch (e) {
    if (e instanceof XDeployError) throw e;
    throw new XDeployError(`the image could not be decoded (${String(e.message).split('\n')[0].slice(0, 200)}).`, 'Pass a PNG or JPEG file that is complete and readable, or its bytes.');
  }
}

/** Pixels `{data, width, height, channels, decoded}` of an image item. `{data, width, height, channels}` pixel arrays
 * pass through as they are (decoded: false: like Python's arrays, they must already be in the bundle's mode). In a
 * browser: a File/Blob (decoded with `colorSpaceConversion: 'none'`, so no colour management changes them), an
 * ImageBitmap, an ImageData, an <img> or a canvas. In Node: a file path, or a file's bytes (Buffer, Uint8Array, Blob),
 * PNG or JPEG, decoded by sharp. */
export async function decodeImage(item, maxPixels = 89478485) {
  if (globalThis.ImageData && item instanceof ImageData) return {data: item.data, width: item.width, height: item.height, channels: 4, decoded: true};
  if (isPixels(item)) return {channels: 4, ...item, decoded: false};
  if (isNode && (typeof item === 'string' || item instanceof URL || ArrayBuffer.isView(item) || item instanceof ArrayBuffer || (globalThis.Blob && item instanceof Blob)))
    return decodeNode(item, maxPixels);
  if (!item || typeof item !== 'object') throw new XDeployError('this is not an image.', isNode ? 'Pass a file path, the file\'s bytes, or {data, width, height, channels}.' : 'Pass a File/Blob, an ImageBitmap, an ImageData, an <img>, a canvas, or {data, width, height, channels}.');
  if (typeof createImageBitmap !== 'function') throw new XDeployError('This host cannot decode image files (no createImageBitmap).', 'Decode the image yourself and pass {data, width, height, channels}.');
  let bmp = item, own = false;
  if (!(globalThis.ImageBitmap && item instanceof ImageBitmap)) {
    try { bmp = await createImageBitmap(item, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'}); own = true; }
    catch (e) { throw new XDeployError(`The browser could not decode ${item?.name ?? 'the image'}: ${e.message}`, 'Pass an image file the browser can read (PNG, JPEG, WebP, ...).'); }
  }
  const canvas = new OffscreenCanvas(bmp.width, bmp.height), ctx = canvas.getContext('2d', {colorSpace: 'srgb', willReadFrequently: true});
  ctx.drawImage(bmp, 0, 0);
  const d = ctx.getImageData(0, 0, bmp.width, bmp.height, {colorSpace: 'srgb'});
  if (own) bmp.close();
  return {data: d.data, width: d.width, height: d.height, channels: 4, decoded: true};
}

// An item in a message, as Python's `_describe`.
const describeItem = x => typeof x === 'string' ? (x.length <= 80 ? JSON.stringify(x) : `${JSON.stringify(x.slice(0, 38))}...${JSON.stringify(x.slice(-38))}`)
  : ArrayBuffer.isView(x) ? `${x.byteLength} bytes` : isPixels(x) ? `${show(x.width)} x ${show(x.height)} x ${show(x.channels ?? 4)} pixels` : `a ${typeName(x)}`;

// ---------------------------------------------------------------- outputs, by task (the Python TASKS' decode)
function multiCut(output) {
  const thr = output.threshold ?? 0.5;
  if ((output.activation ?? 'sigmoid') !== 'none') return thr;
  return thr <= 0 ? -Infinity : thr >= 1 ? Infinity : Math.log(thr / (1 - thr));
}
export const TASKS = {
  single_label: (r, labels) => { let j = 0; r.forEach((p, k) => { if (p > r[j]) j = k; }); return {label: labels[j], index: j, probs: r}; },
  multi_label: (r, labels, output) => { const cut = multiCut(output); return {labels: labels.filter((l, k) => r[k] >= cut), probs: r}; },
  regression: r => ({value: r.length === 1 ? r[0] : r}),
};

/** One plain object per row of the model's outputs (`data`: n x k values), as Python's `Predictor.decode` returns. */
export function decodeOutputs(manifest, data, n) {
  const k = data.length / n, rows = Array.from({length: n}, (_, i) => Array.from(data.subarray(i * k, (i + 1) * k)));
  const bad = rows.map((r, i) => r.every(Number.isFinite) ? -1 : i).filter(i => i >= 0);
  if (bad.length) throw new XDeployError(`The model's outputs for item(s) ${JSON.stringify(bad.slice(0, 10))} are not finite (NaN or infinite), so no prediction is made from them.`, 'Check those inputs: values far outside what the model was trained on can overflow it.');
  const decode = TASKS[manifest.task];
  if (!decode) throw new XDeployError(`This module does not know the task ${JSON.stringify(manifest.task)}.`, `Use a newer xdeploy.mjs; it knows ${Object.keys(TASKS).join(', ')}.`);
  return rows.map(r => decode(r, manifest.labels, manifest.outputs[0]));
}

// ---------------------------------------------------------------- sessions and the device policy
const now = () => globalThis.performance?.now() ?? Date.now();

async function openSession(ort, bytes, name, ep) {
  try { return await ort.InferenceSession.create(bytes, {executionProviders: [ep], graphOptimizationLevel: 'all', logSeverityLevel: 3}); }
  catch (e) { throw new XDeployError(`onnxruntime could not load ${name} on ${ep}: ${e.message}`, 'Re-export the bundle, or use a newer onnxruntime-web/onnxruntime-node.'); }
}

async function hasWebGPU(ort) {
  if (isNode || !globalThis.navigator?.gpu || !ort.env?.webgpu) return false;
  try { return !!(await navigator.gpu.requestAdapter()); } catch { return false; }
}

/** Items `i`..`i+b-1` of `feeds` (which hold `n` items), padded with the last item: a chunk for a model of fixed batch `b`. */
function chunkFeeds(ort, feeds, i, b, n) {
  const chunk = {};
  for (const [k, t] of Object.entries(feeds)) {
    const per = t.data.length / n, d = new t.data.constructor(b * per);
    for (let j = 0; j < b; j++) d.set(t.data.subarray(Math.min(i + j, n - 1) * per, (Math.min(i + j, n - 1) + 1) * per), j * per);
    chunk[k] = new ort.Tensor(t.type, d, [b, ...t.dims.slice(1)]);
  }
  return chunk;
}

/** `session`'s first output for `feeds` (`n` items), run in chunks where the manifest fixes the batch size: `n` rows of it. */
async function runSession(ort, session, manifest, feeds) {
  const n = Object.values(feeds)[0].dims[0], b = manifest.inputs[0].shape[0], name = manifest.outputs[0].name;
  if (!Number.isInteger(b) || b === n) return (await session.run(feeds))[name].data;
  const outs = [];
  for (let i = 0; i < n; i += b) {
    const o = (await session.run(chunkFeeds(ort, feeds, i, b, n)))[name].data;
    outs.push(o.subarray(0, Math.min(b, n - i) * (o.length / b)));
  }
  const data = new Float32Array(outs.reduce((s, o) => s + o.length, 0));
  outs.reduce((at, o) => (data.set(o, at), at + o.length), 0);
  return data;
}

/** The bundle's sample inputs (sample.npz) as tensors, and the arrays of expected outputs by name. */
function sampleFeeds(ort, manifest, sample) {
  const z = readNpz(sample), feeds = {};
  for (const i of manifest.inputs) {
    const a = z[`input.${i.name}`];
    if (!a) throw new XDeployError(`sample.npz has no input ${i.name}.`, 'Re-export the bundle.');
    feeds[i.name] = new ort.Tensor(i.dtype === 'float32' ? 'float32' : i.dtype, a.data, a.shape);
  }
  return {feeds, z};
}

/** The largest difference between `session`'s outputs and the expected ones on the bundle's sample (sample.npz). */
async function sampleDiff(ort, session, manifest, sample, artifact) {
  const {feeds, z} = sampleFeeds(ort, manifest, sample);
  const exp = z[`expected.${artifact.file}`] ?? z.expected, out = await runSession(ort, session, manifest, feeds);
  let d = 0;
  for (let k = 0; k < out.length; k++) d = Math.max(d, Math.abs(out[k] - exp.data[k]));
  return Number.isNaN(d) ? Infinity : d;
}

/** Median milliseconds of `runs` runs of `session` on the sample's first item (a fixed-batch model: one batch of it). */
async function sampleMs(ort, session, manifest, sample, runs = 5) {
  const {feeds} = sampleFeeds(ort, manifest, sample), n = Object.values(feeds)[0].dims[0];
  const b = Number.isInteger(manifest.inputs[0].shape[0]) ? manifest.inputs[0].shape[0] : 1, one = chunkFeeds(ort, feeds, 0, b, n);
  const ts = [];
  await session.run(one);  // warm-up
  for (let i = 0; i < runs; i++) { const t = now(); await session.run(one); ts.push(now() - t); }
  return ts.sort((a, c) => a - c)[Math.floor(ts.length / 2)];
}

/** Open the model on the device `device` asks for ('auto', 'webgpu', 'wasm'; in Node 'cpu'): `{session, device, why}`.
 * 'auto' takes WebGPU only where the browser has a WebGPU adapter and the model, run there on the bundle's sample,
 * matches the CPU's outputs within the variant's tolerance — the rule of Python's device='auto'. int8 QDQ models fail
 * or are wrong on ORT Web's WebGPU EP, so they fall back to wasm here. */
export async function chooseSession(ort, manifest, artifact, model, read, device = 'auto') {
  const cpu = isNode ? 'cpu' : 'wasm';
  if (device !== 'auto') {
    if (!['cpu', 'wasm', 'webgpu'].includes(device)) throw new XDeployError(`device=${JSON.stringify(device)} is not a device this module knows.`, "Use 'auto', 'wasm', 'webgpu' (browsers) or 'cpu' (Node).");
    return {session: await openSession(ort, model, artifact.file, device === 'cpu' || device === 'wasm' ? cpu : device), device, why: `device='${device}' as asked`};
  }
  const passed = [];
  if (await hasWebGPU(ort)) {
    try {
      if (!manifest.sample) throw new XDeployError('the bundle keeps no sample to check WebGPU with');
      const session = await openSession(ort, model, artifact.file, 'webgpu');
      const d = await sampleDiff(ort, session, manifest, await readChecked(read, manifest.sample), artifact);
      const tol = typeof artifact.sample_tolerance === 'number' ? artifact.sample_tolerance : DEFAULT_SAMPLE_TOLERANCE;
      if (d > tol) { await session.release?.(); throw new XDeployError(`its outputs differ from the CPU's by ${d.toPrecision(2)} on the bundle's sample (tolerance ${tol})`); }
      return {session, device: 'webgpu', why: "device='auto': webgpu, as the browser has a WebGPU adapter and the model matched the CPU's outputs on the bundle's sample there"};
    } catch (e) { passed.push(`webgpu (${e.problem ?? e.message})`); }
  } else if (!isNode) passed.push('webgpu (no WebGPU adapter in this browser)');
  return {session: await openSession(ort, model, artifact.file, cpu), device: cpu,
          why: `device='auto': ${cpu}${passed.length ? `; passed over: ${passed.join('; ')}` : ', the CPU (onnxruntime-node)'}`};
}

/** The formats a browser or Node runs: ONNX models, and the same graphs in ONNX Runtime's ORT format. */
export const WEB_FORMATS = ['onnx', 'ort'];

/** `variant: 'auto'`: open each of `artifacts` (every fp32 model and variant the bundle has in the formats asked for) on the
 * device `device` asks for, check it on the bundle's sample against its own CPU outputs (within its `sample_tolerance`),
 * time it on one sample item, and keep the fastest that passed: `{session, device, why, artifact, candidates}`.
 * Where none passes (or the bundle keeps no sample), the fp32 ONNX model, as `variant: 'fp32'` loads it. */
export async function chooseFastest(ort, manifest, artifacts, read, device = 'auto', runs = 5) {
  const fp32 = artifacts.find(a => a.format === 'onnx' && (a.variant ?? 'fp32') === 'fp32') ?? artifacts[0];
  const fallback = async (why, candidates) => ({...(await chooseSession(ort, manifest, fp32, await readChecked(read, fp32), read, device)),
                                               artifact: fp32, candidates, fallbackWhy: why});
  if (!manifest.sample) return fallback('the bundle keeps no sample to check the others with', []);
  const sample = await readChecked(read, manifest.sample), candidates = [];
  let best = null;
  for (const a of artifacts) {
    const c = {file: a.file, format: a.format, variant: a.variant ?? 'fp32', passed: false};
    let s = null;
    try {
      s = await chooseSession(ort, manifest, a, await readChecked(read, a), read, device);
      const tol = typeof a.sample_tolerance === 'number' ? a.sample_tolerance : DEFAULT_SAMPLE_TOLERANCE;
      c.device = s.device; c.diff = await sampleDiff(ort, s.session, manifest, sample, a);
      if (c.diff > tol) throw new XDeployError(`its outputs differ from its CPU outputs by ${c.diff.toPrecision(2)} on the bundle's sample (tolerance ${tol})`);
      c.ms = await sampleMs(ort, s.session, manifest, sample, runs); c.passed = true;
    } catch (e) { c.problem = e.problem ?? e.message; }
    candidates.push(c);
    if (c.passed && (!best || c.ms < best.c.ms)) { await best?.s.session.release?.(); best = {a, s, c}; }
    else await s?.session.release?.();
  }
  if (!best) return fallback('no model passed the sample check', candidates);
  return {...best.s, artifact: best.a, candidates};
}

/** The `why` of a predictor loaded with `variant: 'auto'`: what was chosen, against what, and the device's own why. */
function fastestWhy(r) {
  const ms = c => c.passed ? `${c.file} ${c.ms.toFixed(2)} ms` : `${c.file} failed (${c.problem})`;
  const tried = r.candidates.length ? ` (one item: ${r.candidates.map(ms).join('; ')})` : '';
  return r.fallbackWhy ? `variant='auto': ${r.artifact.file}, the fp32 model, as ${r.fallbackWhy}${tried}; ${r.why}`
                       : `variant='auto': ${r.artifact.file} (${r.artifact.variant ?? 'fp32'}), the fastest that passed the sample check${tried}; ${r.why}`;
}

// ---------------------------------------------------------------- the predictor
/** Where the bundle schema is, by default: beside this module's folder (xdeploy_nb/manifest.schema.json in the Python
 * package; the site's root in a site `xdeploy web` writes). */
export const SCHEMA_URL = new URL('../manifest.schema.json', import.meta.url);

async function loadSchema(schema) {
  if (schema && typeof schema === 'object') return schema;
  const url = schema ? new URL(String(schema), globalThis.location?.href ?? SCHEMA_URL) : SCHEMA_URL;
  if (url.protocol === 'file:') { const {readFile} = await import('node:fs/promises'); return JSON.parse(await readFile(url, 'utf8')); }
  const r = await fetch(url);
  if (!r.ok) throw new XDeployError(`Could not fetch the bundle schema ${url}: HTTP ${r.status}.`, 'Serve manifest.schema.json beside the module folder, or pass {schema}.');
  return r.json();
}

/** Predictions from an xdeploy_nb bundle, in a browser (onnxruntime-web) or Node (onnxruntime-node): what Python's
 * `Predictor` returns. Make one with `await Predictor.load(source, options)`. */
export class Predictor {
  /** Load the bundle at `source` (a URL, or in Node a folder path): validate manifest.json, check each file's sha256,
   * open the preprocessing graph (images) and the model on the chosen device. Options: `ort` (the onnxruntime module;
   * in Node onnxruntime-node by default), `device` ('auto', 'wasm', 'webgpu'; 'cpu' in Node), `variant` ('fp32', one the
   * bundle has, or 'auto': the fastest model here that passes the sample check, see `chooseFastest`; its answers stay within
   * that variant's tolerance of fp32's, so it is for callers who accept that), `format` ('auto': the ONNX model, as Python's
   * Predictor, or with variant 'auto' the ONNX and ORT-format models; 'onnx'; 'ort'), `runs` (timed runs per candidate of
   * variant 'auto'), `threads` (wasm threads; default: one per core where the page is cross-origin isolated, else 1),
   * `schema` (the bundle schema, or its URL), `maxPixels` (the largest image accepted: Pillow's MAX_IMAGE_PIXELS),
   * `digest` (the bundle's digest, 'sha256:...', as `xdeploy digest` prints it: any other bundle is refused). */
  static async load(source, {ort, device = 'auto', variant = 'fp32', format = 'auto', threads, schema, maxPixels = 89478485, digest, runs = 5} = {}) {
    ort = ort ?? (isNode ? await import('onnxruntime-node') : globalThis.ort);
    if (!ort?.InferenceSession) throw new XDeployError('No onnxruntime module was given.', "Pass {ort}: import * as ort from 'onnxruntime-web' (browsers) or 'onnxruntime-node' (Node).");
    if (!isNode && ort.env?.wasm) {
      const iso = !!globalThis.crossOriginIsolated;
      ort.env.wasm.numThreads = threads ?? (iso ? Math.max(1, navigator.hardwareConcurrency || 1) : 1);
    }
    const read = bundleReader(source), p = new Predictor();
    const bytes = await read('manifest.json', MANIFEST_MAX_BYTES);
    if (digest !== undefined && digest !== null) await checkDigest(bytes, digest);
    const manifest = parseManifest(bytes);
    validateManifest(manifest, await loadSchema(schema));
    if (!['auto', ...WEB_FORMATS].includes(format)) throw new XDeployError(`format=${JSON.stringify(format)} is not a format this module runs.`, "Use 'auto' (the ONNX model), 'onnx' or 'ort'.");
    const formats = format !== 'auto' ? [format] : variant === 'auto' ? WEB_FORMATS : ['onnx'];
    const arts = manifest.artifacts.filter(a => formats.includes(a.format));
    const artifact = variant === 'auto' ? arts.find(a => a.format === 'onnx') ?? arts[0] : arts.find(a => (a.variant ?? 'fp32') === variant);
    if (!artifact) throw new XDeployError(`The bundle has no ${JSON.stringify(variant)} variant of its ${formats.join(' or ')} model (it has ${arts.map(a => JSON.stringify(a.variant ?? 'fp32')).join(', ') || 'none'}).`, 'Pass variant: one of those, or re-export the bundle.');
    const pre = manifest.preprocessing;
    Object.assign(p, {ort, manifest, artifact, maxPixels, source: String(source), kind: pre.kind, spec: pre.spec, graph: null, preSession: null});
    if (pre.kind === 'image') {
      p.graph = pre.graph ?? null;
      if (p.graph) {
        p.preSession = await openSession(ort, await readChecked(read, p.graph), p.graph.file, isNode ? 'cpu' : 'wasm');
        const {inputNames: i, outputNames: o} = p.preSession, g = p.graph;
        if (!i.includes(g.input?.name) || !o.includes(g.output?.name)) throw new XDeployError(`${g.file} takes ${i.join(', ')} and gives ${o.join(', ')}, but manifest.json says ${show(g.input?.name)} and ${show(g.output?.name)}.`,
          'Re-export the bundle: its preprocessing graph and manifest.json do not belong together.');
      }
      else p.graphUnavailable = pre.graph_unavailable ?? 'the bundle has no preprocessing graph (it was exported before xdeploy_nb wrote one)';
    }
    if (variant === 'auto') {
      const r = await chooseFastest(ort, manifest, arts, read, device, runs);
      Object.assign(p, {session: r.session, device: r.device, artifact: r.artifact, candidates: r.candidates, why: fastestWhy(r)});
    } else Object.assign(p, await chooseSession(ort, manifest, artifact, await readChecked(read, artifact), read, device));
    checkSession(p.session, manifest, p.artifact.file);
    p.digest = await bundleDigest(bytes);
    p.threads = isNode ? null : ort.env?.wasm?.numThreads ?? 1;
    p.crossOriginIsolated = !!globalThis.crossOriginIsolated;
    return p;
  }

  /** The model's input tensors for `items`: images (see `decodeImage`) or table rows (objects). */
  async prepare(items) {
    const {ort, manifest} = this, inp = manifest.inputs;
    if (this.kind === 'tabular') {
      const {x_cat, x_cont, n} = prepareRows(items, this.spec);
      return {x_cat: new ort.Tensor('int64', x_cat, [n, this.spec.x_cat.length]), x_cont: new ort.Tensor('float32', x_cont, [n, this.spec.x_cont.length])};
    }
    if (!this.preSession) throw new XDeployError(`This image bundle cannot be run outside Python: ${this.graphUnavailable}.`, 'Re-export it with a version of xdeploy_nb that writes preprocess.onnx (the preprocessing graph), or use the Python Predictor.');
    const g = this.graph, mode = g.input.mode, C = g.input.shape?.[2], parts = [];
    for (const [i, item] of (Array.isArray(items) ? items : [items]).entries()) {
      try {
        const px = await decodeImage(item, this.maxPixels);
        if (!px.decoded) checkPixels(px, [C]);  // pixel arrays are taken as they are, in the bundle's mode, as Python takes arrays
        else if (C !== (mode === 'L' ? 1 : 3)) throw new XDeployError(`the preprocessing graph takes ${show(C)} channel(s), not the ${mode === 'L' ? 1 : 3} of mode ${mode}.`, 'Re-export the bundle: its manifest.json was changed.');
        if (px.width * px.height > this.maxPixels) throw tooManyPixels(px, this.maxPixels);
        const hwc = px.decoded ? toMode(px, mode) : px.data;
        const out = await this.preSession.run({[g.input.name]: new ort.Tensor('uint8', new Uint8Array(hwc.buffer, hwc.byteOffset, hwc.length), [px.height, px.width, C])});
        parts.push(out[g.output.name]);
      } catch (e) {
        if (e instanceof XDeployError) throw new XDeployError(`Item ${i} (${describeItem(item)}): ${e.problem}`, e.fix);
        throw new XDeployError(`Item ${i} (${describeItem(item)}): the image could not be prepared (${e.message}).`, 'Pass an image as this module takes them (see decodeImage).');
      }
    }
    const [, c, h, w] = parts[0].dims, batch = new Uint8Array(parts.length * c * h * w);
    parts.forEach((t, i) => batch.set(t.data, i * c * h * w));
    return {[inp[0].name]: new ort.Tensor('uint8', batch, [parts.length, c, h, w])};
  }

  /** The model's (activated) outputs for prepared `feeds`: `{data: Float32Array, n}` (a fixed batch size is padded). */
  async run(feeds) {
    const n = Object.values(feeds)[0].dims[0], b = this.manifest.inputs[0].shape[0];
    if (Number.isInteger(b) && n !== b) {
      const outs = [];
      for (let i = 0; i < n; i += b) {
        const o = await this.run(chunkFeeds(this.ort, feeds, i, b, n));
        outs.push(o.data.subarray(0, Math.min(b, n - i) * (o.data.length / b)));
      }
      const data = new Float32Array(outs.reduce((s, o) => s + o.length, 0));
      outs.reduce((at, o) => (data.set(o, at), at + o.length), 0);
      return {data, n};
    }
    checkFeeds(feeds, this.manifest.inputs);
    let out;
    try { out = await this.session.run(feeds); }
    catch (e) { throw new XDeployError(`${this.artifact.file} could not be run on ${this.device}: ${e.message}`, "Check the inputs against the manifest's inputs."); }
    return {data: out[this.manifest.outputs[0].name].data, n};
  }

  /** One prediction object per item, as Python's `Predictor.predict_batch`: `{label, index, probs}` (single_label),
   * `{labels, probs}` (multi_label) or `{value}` (regression). */
  async predictBatch(items) {
    items = Array.isArray(items) ? items : [items];
    if (!items.length) return [];
    const {data, n} = await this.run(await this.prepare(items));
    return decodeOutputs(this.manifest, data, n);
  }

  /** The prediction for one item (an image, or a table row), with `ms`: the milliseconds it took, decode to decode. */
  async predict(item) {
    const t = now(), [r] = await this.predictBatch([item]);
    return {...r, ms: now() - t};
  }

  /** Where this predictor runs and why, and what it runs, as plain data. */
  describe() {
    const a = this.artifact;
    return {device: this.device, why: this.why, threads: this.threads, crossOriginIsolated: this.crossOriginIsolated, digest: this.digest,
            ...(this.candidates ? {candidates: this.candidates} : {}),
            artifact: {file: a.file, format: a.format, precision: a.precision, size: a.size, sha256: a.sha256, variant: a.variant ?? 'fp32'},
            preprocessing: this.kind === 'image' ? (this.graph ? {graph: this.graph.file, mode: this.graph.input.mode} : {graph: null, why: this.graphUnavailable}) : {kind: 'tabular'},
            onnxruntime: this.ort.env?.versions?.web ?? this.ort.env?.versions?.node ?? this.ort.env?.versions?.common ?? null, module: VERSION};
  }
}

/** The digest of a bundle, from its manifest.json's bytes exactly as stored: 'sha256:' + their hex sha256. The manifest
 * names every file's sha256, so this one value pins the whole bundle (Python's `xdeploy_nb.core.bundle_digest`). */
export async function bundleDigest(manifestBytes) { return `sha256:${await sha256Hex(manifestBytes)}`; }

async function checkDigest(bytes, digest) {
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new XDeployError(`digest=${show(digest)} is not a bundle digest.`,
    "Pass the digest as `xdeploy digest BUNDLE` prints it: 'sha256:' and 64 lowercase hex digits.");
  const found = await bundleDigest(bytes);
  if (found !== digest) throw new XDeployError(`The bundle's digest is ${found}, not the ${digest} expected: its manifest.json (and so what it names) is not the bundle that was pinned.`,
    'Load the bundle you pinned (copy it again from its source), or, if this one is a re-export you trust, pin its new digest.');
}

/** Refuse `feeds` (input name -> ort.Tensor) that do not fit the manifest's `inputs`: names, types, ranks, fixed sizes,
 * and a size named twice (e.g. 'batch') the same everywhere; float values finite. Python's `_check_feeds`. */
export function checkFeeds(feeds, specs) {
  const fix = "Make the inputs with predictor.prepare(items), or as manifest.inputs describes them.";
  const names = specs.map(s => s.name);
  if (Object.keys(feeds).sort().join() !== names.slice().sort().join()) throw new XDeployError(`The model takes the inputs ${names.join(', ')}, not ${Object.keys(feeds).join(', ')}.`, fix);
  const seen = {};
  for (const s of specs) {
    const t = feeds[s.name], shape = s.shape;
    if (t.type !== s.dtype) throw new XDeployError(`Input ${JSON.stringify(s.name)} is ${t.type}; the model takes ${s.dtype}.`, fix);
    if (t.dims.length !== shape.length || shape.some((d, k) => typeof d === 'number' && d !== t.dims[k]))
      throw new XDeployError(`Input ${JSON.stringify(s.name)} has shape [${t.dims.join(', ')}]; the model takes [${shape.join(', ')}].`, fix);
    shape.forEach((d, k) => {
      if (typeof d !== 'string') return;
      seen[d] ??= [t.dims[k], s.name];
      if (seen[d][0] !== t.dims[k]) throw new XDeployError(`Input ${JSON.stringify(s.name)} has ${d} ${t.dims[k]} but input ${JSON.stringify(seen[d][1])} has ${d} ${seen[d][0]}: they must be the same.`, fix);
    });
    if (t.type.startsWith('float') && !t.data.every(Number.isFinite)) throw new XDeployError(`Input ${JSON.stringify(s.name)} holds NaN or infinite values, from which no prediction is made.`, `${fix} Missing values go in as null.`);
  }
}

// A model whose inputs or output are not the ones the manifest describes (names, types, and fixed sizes: a manifest that
// says batch 100000 for a model that takes any batch would pad every run to 100000 items) is refused, as Python's.
const ORT_TYPES = {uint8: 'uint8', int64: 'int64', float32: 'float32', float16: 'float16'};
export function checkSession(session, manifest, file) {
  const fix = 'Re-export the bundle: its model file and manifest.json do not belong together.';
  const have = session.inputNames.slice().sort().join(', '), want = manifest.inputs.map(i => i.name).sort().join(', ');
  if (have !== want) throw new XDeployError(`${file} takes the inputs ${have}, but manifest.json says ${want}.`, fix);
  const out = manifest.outputs[0];
  if (!session.outputNames.includes(out.name)) throw new XDeployError(`${file} has the outputs ${session.outputNames.join(', ')}, but manifest.json says ${JSON.stringify(out.name)}.`, fix);
  const meta = [...(session.inputMetadata ?? []), ...(session.outputMetadata ?? [])];
  for (const spec of [...manifest.inputs, out]) {
    const m = meta.find(x => x.name === spec.name);
    if (!m?.isTensor || !m.shape) continue;
    const dims = m.shape.map(d => typeof d === 'number' && d >= 0 ? d : 'any');
    if (ORT_TYPES[spec.dtype] && m.type !== ORT_TYPES[spec.dtype]) throw new XDeployError(`${file}: ${spec.name} is ${m.type}, but manifest.json says ${spec.dtype}.`, fix);
    if (dims.length !== spec.shape.length || spec.shape.some((d, k) => typeof d === 'number' && d !== dims[k]))
      throw new XDeployError(`${file}: ${spec.name} has the shape [${dims.join(', ')}], but manifest.json says [${spec.shape.join(', ')}].`, fix);
  }
}

/** Shorthand: `await load(source, options)` is `await Predictor.load(source, options)`. */
export const load = (source, options) => Predictor.load(source, options);
