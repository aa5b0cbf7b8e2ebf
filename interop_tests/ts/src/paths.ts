/** Where the repository is, relative to this package (interop_tests/ts/dist/src or src). */
import {existsSync} from 'node:fs';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

function findRepo(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, 'proto', 'accord', 'federation', 'v1', 'federation.proto'))) {
      return d;
    }
    d = resolve(d, '..');
  }
  throw new Error('cannot find the repository root (proto/accord/federation/v1/federation.proto)');
}

/** The repository root (holds proto/, credentials/contexts/, docs/spec/vectors/). */
export const REPO = process.env.ACCORD_REPO ?? findRepo();
