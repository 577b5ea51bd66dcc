/**
 * Prints where a V8 CPU profile spent its time:
 *   node --import tsx bench/profile-summary.ts bench/results/<stamp>-profiles/*.cpuprofile
 */
import { summarizeProfile } from './lib/profile.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile...');
  process.exit(2);
}
for (const file of files) {
  const summary = summarizeProfile(file, 25);
  console.log(`\n${summary.file}: ${summary.activeMs} ms active`);
  for (const entry of summary.byOrigin.slice(0, 12)) console.log(`  ${entry.percent.toFixed(1).padStart(5)} %  ${entry.origin}`);
  console.log('  top functions (self time):');
  for (const entry of summary.topFunctions) console.log(`  ${entry.percent.toFixed(1).padStart(5)} %  ${entry.function}`);
}
