// Validates CycloneDX JSON documents against the schema of the spec
// version each declares, strictly (no unknown properties), with the
// CycloneDX project's own JavaScript library, whose schemas are bundled:
// no network.
//
// Usage: node validate.mjs FILE...  prints one line per file, "FILE: valid
// CycloneDX 1.6" or "FILE: invalid ..." followed by one indented line per
// error; exit status 1 if any is invalid, 2 if the validator cannot run.
// With --json, prints [{file, valid, errors}] instead.
import { readFile } from 'node:fs/promises';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';

const args = process.argv.slice(2);
const asJSON = args[0] === '--json';
const files = asJSON ? args.slice(1) : args;
const validators = new Map();
const results = [];
for (const file of files) {
  const text = await readFile(file, 'utf8');
  let version;
  try {
    version = JSON.parse(text).specVersion;
  } catch (e) {
    results.push({ file, valid: false, errors: [`not JSON: ${e.message}`] });
    continue;
  }
  if (!Object.values(Spec.Version).includes(version)) {
    results.push({ file, valid: false, errors: [`unknown CycloneDX specVersion ${JSON.stringify(version)}`] });
    continue;
  }
  if (!validators.has(version)) {
    validators.set(version, new Validation.JsonStrictValidator(version));
  }
  const errors = await validators.get(version).validate(text);
  // One line per error; the schema's enums (all SPDX ids) are left out.
  results.push({
    file, version, valid: errors === null,
    errors: (errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message}`),
  });
}
if (asJSON) {
  console.log(JSON.stringify(results));
} else {
  for (const r of results) {
    if (r.valid) {
      console.log(`${r.file}: valid CycloneDX ${r.version}`);
    } else {
      console.log(`${r.file}: invalid CycloneDX ${r.version ?? ''}\n${r.errors.map((e) => `  ${e}`).join('\n')}`);
    }
  }
}
process.exit(results.every((r) => r.valid) ? 0 : 1);
