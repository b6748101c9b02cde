// node --test: the module under Node with onnxruntime-node. Unit tests need nothing; the bundle tests read the fixture
// that tests/test_web.py writes (XDEPLOY_WEB_FIXTURE: bundles, inputs and the Python Predictor's answers) and run there.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {readFile} from 'node:fs/promises';
import {load, prepareRows, schemaErrors, validateManifest, toMode, readNpz, decodeOutputs, sha256Hex, XDeployError, SCHEMA_URL, parseManifest, checkPixels, bundleDigest} from '../xdeploy.mjs';

const schema = JSON.parse(await readFile(SCHEMA_URL, 'utf8'));
const SPEC = {version: 1, kind: 'tabular', columns: ['island', 'flag', 'mass'], x_cat: ['island', 'flag', 'mass_na'], x_cont: ['mass'],
  fill_missing: [{column: 'mass', value: 4000, flag: 'mass_na'}], normalize: null,
  categories: {island: ['#na#', 'Biscoe', 'Dream', 1], flag: ['#na#', false, true], mass_na: ['#na#', false, true]}};
const codes = r => { const {x_cat, x_cont} = prepareRows(r, SPEC); return [Array.from(x_cat, Number), Array.from(x_cont)]; };
const throwsFix = (f, re) => assert.throws(f, e => e instanceof XDeployError && re.test(e.message) && e.fix.length > 0);

test('tabular rows: fill-missing with its flag, categorify, unseen and missing categories', () => {
  assert.deepEqual(codes({island: 'Dream', flag: true, mass: 3700}), [[2, 2, 1], [3700]]);
  assert.deepEqual(codes({island: null, flag: false, mass: null}), [[0, 1, 2], [4000]]);   // missing: code 0; fill value, flag true
  assert.deepEqual(codes({island: 'Mars', flag: undefined, mass: NaN}), [[0, 0, 2], [4000]]);  // unseen: code 0
  assert.deepEqual(codes({island: 1, flag: 1, mass: '3.5e3'}), [[3, 0, 1], [3500]]);  // by value and type: true is not 1; numbers as text
  assert.deepEqual(codes({island: '1', flag: 'true', mass: ' nan '}), [[0, 0, 2], [4000]]);  // '1' is not 1; 'nan' is missing, as float('nan')
  assert.deepEqual(codes([{island: 'Biscoe', flag: true, mass: 1}, {island: 'Dream', flag: false, mass: 2}]), [[1, 2, 1, 2, 1, 1], [1, 2]]);
});

test('tabular rows: what Python refuses is refused, naming the row and column', () => {
  throwsFix(() => prepareRows({island: 'Dream', flag: true}, SPEC), /Row 0 has no column "mass"/);
  throwsFix(() => prepareRows([{island: 'Dream', flag: true, mass: 1}, {island: 'Dream', flag: true, mass: 'heavy'}], SPEC), /Row 1: column "mass" is "heavy", which is not a number/);
  throwsFix(() => prepareRows({island: 'Dream', flag: true, mass: Infinity}, SPEC), /not a finite number that float32 can hold/);
  throwsFix(() => prepareRows({island: 'Dream', flag: true, mass: 1e39}, SPEC), /float32/);
  throwsFix(() => prepareRows({island: {a: 1}, flag: true, mass: 1}, SPEC), /not a category value/);
  throwsFix(() => prepareRows({island: 'Dream', flag: true, mass: null}, {...SPEC, fill_missing: []}), /had no missing values there/);
  throwsFix(() => prepareRows(['Dream'], SPEC), /must be objects/);
});

test('pixels: RGBA drops alpha, L is Pillow\'s integer luma, L in RGB repeats', () => {
  const rgba = {data: Uint8Array.from([10, 200, 30, 0, 255, 255, 255, 128]), width: 2, height: 1, channels: 4};
  assert.deepEqual(Array.from(toMode(rgba, 'RGB')), [10, 200, 30, 255, 255, 255]);
  const L = (r, g, b) => Math.floor((19595 * r + 38470 * g + 7471 * b + 32768) / 65536);
  assert.deepEqual(Array.from(toMode(rgba, 'L')), [L(10, 200, 30), 255]);
  assert.deepEqual(Array.from(toMode({data: Uint8Array.from([7]), width: 1, height: 1, channels: 1}, 'RGB')), [7, 7, 7]);
  throwsFix(() => toMode({data: new Uint8Array(5), width: 2, height: 1, channels: 3}, 'RGB'), /5 values for 2 x 1 x 3/);
});

test('schema subset: types, enums, required, closed objects, items, oneOf', () => {
  const s = {type: 'object', required: ['a'], additionalProperties: false, properties: {a: {type: 'integer', minimum: 1}, b: {type: 'array', items: {enum: ['x', 'y']}, maxItems: 2}, c: {oneOf: [{type: 'string', pattern: '^[a-f0-9]{4}$'}, {type: 'null'}]}}};
  assert.deepEqual(schemaErrors(s, {a: 1, b: ['x'], c: null}), []);
  assert.deepEqual(schemaErrors(s, {a: 2.0, c: 'beef'}), []);
  assert.match(schemaErrors(s, {b: ['z', 'x', 'y']}).join('\n'), /has no "a"[\s\S]*more than 2 items[\s\S]*"z" is not one of/);
  assert.match(schemaErrors(s, {a: 0, d: 1}).join(), /0 < 1.*unknown field "d"/);
  assert.match(schemaErrors(s, {a: 1, c: 'BEEF'}).join(), /does not match/);
  assert.match(schemaErrors(s, {a: 1.5}).join(), /is number, not integer/);
});

test('the manifest schema: a manifest is checked, a broken one refused', async () => {
  const fx = process.env.XDEPLOY_WEB_FIXTURE && JSON.parse(await readFile(process.env.XDEPLOY_WEB_FIXTURE, 'utf8'));
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  if (!fx) return;
  for (const b of Object.values(fx.bundles)) {
    const m = JSON.parse(await readFile(`${b.path}/manifest.json`, 'utf8'));
    assert.equal(validateManifest(m, schema), m);
    throwsFix(() => validateManifest({...m, task: 'poetry'}, schema), /does not match the bundle schema: \$\.task/);
    throwsFix(() => validateManifest({...m, artifacts: [{...m.artifacts[0], sha256: 'xyz'}]}, schema), /artifacts\[0\]\.sha256/);
    throwsFix(() => validateManifest({...m, labels: m.labels.slice(1)}, schema), /values per item but there are/);
  }
});

test('sha256 (Web Crypto) and decodeOutputs', async () => {
  assert.equal(await sha256Hex(new TextEncoder().encode('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const m = {task: 'single_label', labels: ['a', 'b'], outputs: [{activation: 'softmax'}]};
  assert.deepEqual(decodeOutputs(m, Float32Array.from([0.25, 0.75]), 1), [{label: 'b', index: 1, probs: [0.25, 0.75]}]);
  assert.deepEqual(decodeOutputs({...m, task: 'multi_label', outputs: [{activation: 'sigmoid', threshold: 0.5}]}, Float32Array.from([0.5, 0.25]), 1), [{labels: ['a'], probs: [0.5, 0.25]}]);
  assert.deepEqual(decodeOutputs({...m, task: 'regression', labels: ['v']}, Float32Array.from([3, 4]), 2), [{value: 3}, {value: 4}]);
  throwsFix(() => decodeOutputs(m, Float32Array.from([NaN, 1]), 1), /not finite/);
});

test('issue 27: closed objects by own keys, strict manifest.json, checked pixels', async () => {
  const closed = {type: 'object', additionalProperties: false, properties: {a: {}}};
  for (const k of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])
    assert.match(schemaErrors(closed, parseManifest(new TextEncoder().encode(`{"a": 1, "${k}": 1}`))).join(), /unknown field/);
  const enc = t => new TextEncoder().encode(t);
  for (const [t, re] of [['{"a": 1, "a": 2}', /appears twice/], ['[NaN]', /not valid JSON/], ['['.repeat(100000), /nested more than/], ['{"a": ', /unexpected end/]])
    throwsFix(() => parseManifest(enc(t)), re);
  throwsFix(() => parseManifest(Uint8Array.from([0x22, 0xff, 0x22])), /not UTF-8/);
  const px = (data, w = 1, h = 1, channels = 3) => ({data, width: w, height: h, channels});
  throwsFix(() => checkPixels(px(new Float32Array(3))), /uint8 \(0-255\), not Float32Array/);
  throwsFix(() => checkPixels(px(new Uint16Array(3))), /not Uint16Array/);
  throwsFix(() => checkPixels(px([300, 0, 0])), /not an Array/);
  throwsFix(() => checkPixels(px({length: 3})), /uint8/);
  throwsFix(() => checkPixels(px(new Uint8Array(3), 1.5)), /whole numbers/);
  throwsFix(() => checkPixels(px(new Uint8Array(1), 1, 1, 1), [3]), /3 channel/);
  assert.equal(await bundleDigest(enc('abc')), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

// ---- with bundles: the answers of Python's Predictor, written by tests/test_web.py
const fixture = process.env.XDEPLOY_WEB_FIXTURE;
const needs = {skip: fixture ? false : 'XDEPLOY_WEB_FIXTURE is not set: tests/test_web.py writes it and runs these'};
const fx = fixture ? JSON.parse(await readFile(fixture, 'utf8')) : null;
const close = (a, b) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));

test('tabular bundle in Node: the Python Predictor\'s answers', needs, async () => {
  const b = fx.bundles.tabular, p = await load(b.path);
  assert.equal(p.describe().device, 'cpu');
  const got = await p.predictBatch(b.rows);
  assert.deepEqual(got.map(r => r.label), b.expected.map(r => r.label));
  assert.ok(Math.max(...got.map((r, i) => close(r.probs, b.expected[i].probs))) <= 1e-5);
  const one = await p.predict(b.rows[0]);
  assert.equal(one.label, b.expected[0].label); assert.ok(one.ms > 0);
});

test('tabular bundles with one side only (a zero-width x_cat or x_cont) in Node: learn.predict\'s answers', needs, async () => {
  for (const key of ['tabular_cont', 'tabular_cat']) {
    const b = fx.bundles[key], p = await load(b.path), got = await p.predictBatch(b.rows);
    assert.deepEqual(got.map(r => r.label), b.expected.map(r => r.label), key);
    assert.ok(Math.max(...got.map((r, i) => close(r.probs, b.expected[i].probs))) <= 1e-5, key);
  }
});

test('image bundle in Node: decoded pixel arrays, the Python Predictor\'s answers', needs, async () => {
  const b = fx.bundles.image, p = await load(b.path);
  const items = b.pixels.map(x => ({data: Buffer.from(x.data, 'base64'), width: x.width, height: x.height, channels: x.channels}));
  const got = await p.predictBatch(items);
  assert.deepEqual(got.map(r => r.label), b.expected.map(r => r.label));
  assert.ok(Math.max(...got.map((r, i) => close(r.probs, b.expected[i].probs))) <= 1e-5);
  const small = await load(b.path, {maxPixels: 100});
  await assert.rejects(small.predict(items[0]), /more than the 100 this predictor accepts/);
});

test("variant 'auto' in Node: the fastest model that passes the sample check; the others where one fails; fp32 where all do", needs, async () => {
  const b = fx.bundles.image, items = b.pixels.map(x => ({data: Buffer.from(x.data, 'base64'), width: x.width, height: x.height, channels: x.channels}));
  const p = await load(b.path, {variant: 'auto', runs: 3}), d = p.describe();
  assert.deepEqual(d.candidates.map(c => c.file).sort(), ['model.int8-static.onnx', 'model.onnx', 'model.ort']);
  assert.ok(d.candidates.every(c => c.passed && c.ms > 0), JSON.stringify(d.candidates));
  assert.equal(d.artifact.file, d.candidates.reduce((a, c) => c.ms < a.ms ? c : a).file);
  assert.match(d.why, /^variant='auto': .* the fastest that passed the sample check/);
  const got = await p.predictBatch(items), want = b.by_file[d.artifact.file];
  assert.deepEqual(got.map(r => r.label), want.map(r => r.label));
  assert.ok(Math.max(...got.map((r, i) => close(r.probs, want[i].probs))) <= 1e-5);
  const bad = (await load(b.bad_int8, {variant: 'auto', runs: 3})).describe(), int8 = bad.candidates.find(c => c.variant === 'int8-static');
  assert.ok(!int8.passed && /differ from its CPU outputs by/.test(int8.problem), JSON.stringify(int8));
  assert.equal(bad.artifact.variant, 'fp32');
  const none = (await load(b.all_bad, {variant: 'auto', runs: 3})).describe();
  assert.equal(none.artifact.file, 'model.onnx'); assert.match(none.why, /the fp32 model, as no model passed the sample check/);
  assert.ok(none.candidates.every(c => !c.passed));
});

test("format 'ort': the bundle's ORT-format model, the same answers; an unknown format is refused", needs, async () => {
  const b = fx.bundles.image, items = b.pixels.map(x => ({data: Buffer.from(x.data, 'base64'), width: x.width, height: x.height, channels: x.channels}));
  const p = await load(b.path, {format: 'ort'});
  assert.equal(p.describe().artifact.file, 'model.ort'); assert.equal(p.describe().candidates, undefined);
  const got = await p.predictBatch(items), want = b.by_file['model.ort'];
  assert.ok(Math.max(...got.map((r, i) => close(r.probs, want[i].probs))) <= 1e-5);
  await assert.rejects(load(b.path, {format: 'pte'}), /format="pte" is not a format this module runs/);
  assert.equal((await load(b.path)).describe().artifact.file, 'model.onnx');  // format 'auto' is the ONNX model, as in Python
});

test('a changed model file is refused before it is loaded', needs, async () => {
  const {mkdtemp, cp, writeFile} = await import('node:fs/promises'), {tmpdir} = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/xdeploy-`);
  await cp(fx.bundles.tabular.path, dir, {recursive: true});
  const f = `${dir}/model.onnx`, data = await readFile(f);
  data[data.length - 1] ^= 1; await writeFile(f, data);
  await assert.rejects(load(dir), e => e instanceof XDeployError && /model\.onnx has sha256 .* but manifest\.json says/.test(e.message));
  await assert.rejects(load(`${dir}/nowhere`), /Could not read manifest\.json/);
  await assert.rejects(load(fx.bundles.tabular.path, {variant: 'fp64'}), /no "fp64" variant/);
});

test('an image bundle without a preprocessing graph refuses images, saying why', needs, async () => {
  const {mkdtemp, cp, writeFile} = await import('node:fs/promises'), {tmpdir} = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/xdeploy-`);
  await cp(fx.bundles.image.path, dir, {recursive: true});
  const m = JSON.parse(await readFile(`${dir}/manifest.json`, 'utf8'));
  m.preprocessing.graph = null; m.preprocessing.graph_unavailable = 'the resize method has no ONNX equivalent';
  await writeFile(`${dir}/manifest.json`, JSON.stringify(m));
  const p = await load(dir), x = fx.bundles.image.pixels[0];
  assert.deepEqual(p.describe().preprocessing, {graph: null, why: 'the resize method has no ONNX equivalent'});
  await assert.rejects(p.predict({data: Buffer.from(x.data, 'base64'), width: x.width, height: x.height, channels: 3}),
                       /cannot be run outside Python: the resize method has no ONNX equivalent/);
});

test('image files in Node (sharp): PNG paths and bytes, the Python Predictor\'s answers', needs, async () => {
  const b = fx.bundles.image, p = await load(b.path);
  for (const items of [b.files, await Promise.all(b.files.map(f => readFile(f)))]) {
    const got = await p.predictBatch(items);
    assert.deepEqual(got.map(r => r.label), b.expected_files.map(r => r.label));
    assert.ok(Math.max(...got.map((r, i) => close(r.probs, b.expected_files[i].probs))) <= 1e-5);
  }
  await assert.rejects(p.predict('/nowhere.png'), /Item 0 \("\/nowhere.png"\): there is no such file/);
  await assert.rejects(p.predict((await readFile(b.files[0])).subarray(0, 60)), /Item 0 \(60 bytes\): the image could not be decoded/);
});

test('a pinned digest refuses a bundle whose labels were permuted (its hashes still pass)', needs, async () => {
  const {mkdtemp, cp, writeFile} = await import('node:fs/promises'), {tmpdir} = await import('node:os');
  const b = fx.bundles.image, dir = await mkdtemp(`${tmpdir()}/xdeploy-`);
  await cp(b.path, dir, {recursive: true});
  const m = JSON.parse(await readFile(`${dir}/manifest.json`, 'utf8'));
  m.labels = [...m.labels.slice(1), m.labels[0]];
  await writeFile(`${dir}/manifest.json`, JSON.stringify(m));
  assert.deepEqual((await load(dir)).manifest.labels, m.labels);  // valid, as far as its hashes go
  await assert.rejects(load(dir, {digest: b.digest}), e => e instanceof XDeployError && e.message.includes(`not the ${b.digest} expected`));
  assert.equal((await load(b.path, {digest: b.digest})).digest, b.digest);
  await assert.rejects(load(b.path, {digest: 'md5:x'}), /is not a bundle digest/);
});
