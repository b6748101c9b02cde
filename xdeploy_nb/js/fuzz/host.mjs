// Not a test file: it lies outside test/ so that `node --test` (which runs every .mjs under test/) does not run it.
// The JS module as a host of the cross-host fuzz suite (tests/test_fuzz.py): reads a JSON file of cases
// ({id, bundle, items, options}), loads each bundle with onnxruntime-node and predicts its items, and prints one JSON
// line per case: {id, verdict: 'answer', answers} | {id, verdict: 'refused', error} (the module's XDeployError) |
// {id, verdict: 'raw', error} (any other error: a bug) | {id, verdict: 'hang'} (past the per-case time limit).
// Items are JSON with tags for what JSON cannot say: {$: 'nan'|'inf'|'-inf'|'undefined'}, {$: 'bigint', v},
// {$: 'bytes', b64} (a file's bytes), {$: 'pixels', type, b64, width, height, channels} (a pixel object whose data is
// a typed array of `type`, a string, an array-like or a plain Array).
import {readFile} from 'node:fs/promises';
import {load, XDeployError} from '../xdeploy.mjs';

const TYPES = {u8: Uint8Array, u8c: Uint8ClampedArray, u16: Uint16Array, f32: Float32Array, i32: Int32Array};
function decode(v) {
  if (Array.isArray(v)) return v.map(decode);
  if (!v || typeof v !== 'object') return v;
  if (v.$ === 'nan') return NaN;
  if (v.$ === 'inf') return Infinity;
  if (v.$ === '-inf') return -Infinity;
  if (v.$ === 'undefined') return undefined;
  if (v.$ === 'bigint') return BigInt(v.v);
  if (v.$ === 'bytes') return Buffer.from(v.b64, 'base64');
  if (v.$ === 'pixels') {
    const raw = Buffer.from(v.b64 ?? '', 'base64'), T = TYPES[v.type];
    const data = T ? new T(Uint8Array.from(raw)) : v.type === 'string' ? raw.toString('latin1') : v.type === 'arraylike' ? {length: raw.length} : Array.from(raw, x => x * (v.scale ?? 1));
    return {data, width: v.width, height: v.height, ...(v.channels === undefined ? {} : {channels: v.channels})};
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x)]));
}

const round = x => Math.round(x * 1e5) / 1e5;
async function one(c, cache) {
  const key = JSON.stringify([c.bundle, c.options ?? {}]);
  let p = c.reuse ? cache.get(key) : undefined;
  if (!p) { p = await load(c.bundle, {device: 'cpu', ...(c.options ?? {})}); if (c.reuse) cache.set(key, p); }
  if (c.items === undefined || c.items === null) return [];
  const out = await p.predictBatch(decode(c.items));
  return out.map(r => ({label: r.label ?? null, index: r.index ?? null, probs: (r.probs ?? []).map(round)}));
}

const {cases, limit_ms = 10000} = JSON.parse(await readFile(process.argv[2], 'utf8'));
const cache = new Map();
for (const c of cases) {
  let timer, res;
  const hang = new Promise(r => { timer = setTimeout(() => r({verdict: 'hang'}), limit_ms); });
  try { res = await Promise.race([one(c, cache).then(answers => ({verdict: 'answer', answers})), hang]); }
  catch (e) { res = e instanceof XDeployError && e.fix ? {verdict: 'refused', error: e.message} : {verdict: 'raw', error: `${e?.name}: ${e?.message}`}; }
  clearTimeout(timer);
  process.stdout.write(JSON.stringify({id: c.id, ...res}) + '\n');
}
process.exit(0);
