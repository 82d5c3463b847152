// Reads a .gz (or .nii.gz) file with the JavaScript readers that browser
// viewers use and checks that each returns the complete content.
//   node check_gz.mjs GZ_FILE EXPECTED_RAW_FILE [nifti]
// Readers: fflate gunzipSync, nifti-reader-js decompress (fflate
// decompressSync) and decompressAsync (DecompressionStream); with "nifti",
// also nifti-reader-js readHeader/readImage. Exit 0: every reader returned
// exactly the bytes of EXPECTED_RAW_FILE; 1: a reader returned other bytes or failed;
// 2: bad usage.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'fflate';
import * as nifti from 'nifti-reader-js';

const [file, rawFile, mode] = process.argv.slice(2);
if (!file || !rawFile) {
  console.error('usage: node check_gz.mjs GZ_FILE EXPECTED_RAW_FILE [nifti]');
  process.exit(2);
}
const expected = readFileSync(rawFile);
const expectedSize = expected.byteLength;
const digest = createHash('sha256').update(expected).digest('hex');
const input = readFileSync(file);
// An ArrayBuffer holding exactly the file bytes (Buffer may share a pool).
const ab = input.buffer.slice(input.byteOffset, input.byteOffset + input.byteLength);

let failures = 0;
function check(name, bytes) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const sha = createHash('sha256').update(u8).digest('hex');
  if (u8.byteLength !== expectedSize || sha !== digest) {
    console.error(`${name}: got ${u8.byteLength} bytes (sha256 ${sha}), expected ${expectedSize} (${digest})`);
    failures++;
  } else {
    console.log(`${name}: ok (${u8.byteLength} bytes)`);
  }
  return u8;
}

try {
  check('fflate.gunzipSync', gunzipSync(new Uint8Array(ab)));
} catch (e) {
  console.error(`fflate.gunzipSync: ${e}`);
  failures++;
}

let raw = null;
try {
  if (!nifti.isCompressed(ab)) throw new Error('isCompressed() is false');
  raw = check('nifti-reader-js.decompress', nifti.decompress(ab));
} catch (e) {
  console.error(`nifti-reader-js.decompress: ${e}`);
  failures++;
}

try {
  check('nifti-reader-js.decompressAsync (DecompressionStream)', await nifti.decompressAsync(ab));
} catch (e) {
  console.error(`nifti-reader-js.decompressAsync: ${e}`);
  failures++;
}

if (mode === 'nifti' && raw) {
  try {
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    if (!nifti.isNIFTI(buf)) throw new Error('not recognised as NIfTI');
    const hdr = nifti.readHeader(buf);
    const img = nifti.readImage(hdr, buf);
    let nvox = 1;
    for (let i = 1; i <= hdr.dims[0]; ++i) nvox *= hdr.dims[i];
    const expectedImage = nvox * (hdr.numBitsPerVoxel / 8);
    if (img.byteLength !== expectedImage || hdr.vox_offset + expectedImage !== expectedSize) {
      throw new Error(`image ${img.byteLength} bytes, header says ${expectedImage} at offset ${hdr.vox_offset}`);
    }
    console.log(`nifti-reader-js.readImage: ok (dims ${hdr.dims.slice(1, hdr.dims[0] + 1).join('x')})`);
  } catch (e) {
    console.error(`nifti-reader-js.readHeader/readImage: ${e}`);
    failures++;
  }
}
process.exit(failures === 0 ? 0 : 1);
