// response_digest: the provider hashes Python's json.dumps(json.loads(payload), sort_keys=True,
// separators=(",", ":")); the expected text below is what CPython 3.11 prints for the input.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {parseKeepingNumbers, pythonJsonDumps} from '../src/requester.js';

test('Python json.dumps spelling: ints vs floats, float repr boundaries, ensure_ascii, key order', () => {
  const input = '{"b":[1,2.5,1.0,0.0,-0.0,1e16,1.5e16,1e-5,0.0001,123456789012345678901234567890,1E2,0.1,-3.25e-7,12345.678,1e15,99999999999999999.0,-0],"a":"\u00e9\ud83d\ude00\u007f\\"x\\\\u00e9"}';
  const python = '{"a":"\\u00e9\\ud83d\\ude00\\u007f\\"x\\\\u00e9","b":[1,2.5,1.0,0.0,-0.0,1e+16,1.5e+16,1e-05,0.0001,123456789012345678901234567890,100.0,0.1,-3.25e-07,12345.678,1000000000000000.0,1e+17,0]}';
  assert.equal(pythonJsonDumps(parseKeepingNumbers(input)), python);
});

test('numbers inside strings are not numbers', () => {
  assert.equal(pythonJsonDumps(parseKeepingNumbers('{"k":"1.0 and -2e5","n":[-1.50]}')), '{"k":"1.0 and -2e5","n":[-1.5]}');
});
