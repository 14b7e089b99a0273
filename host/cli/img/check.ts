// `wkvm img check [-f FMT] [--output=human|json] [-q] FILE`: qemu-img check's report and exit status
// for qcow2 images (0 clean, 1 check not completed, 2 corruptions, 3 leaks only; 63 for raw, which has
// nothing to check). The check itself is host/block/qcow2/check.ts; repairing (-r) is left to qemu-img.

import { DiskImageError } from '../../block/errors.js';
import { checkQcow2, type Qcow2CheckReport } from '../../block/qcow2/check.js';
import { ImgError, STATUS_CHECK_UNSUPPORTED } from './errors.js';
import { openImageFile, requireFormat, resolveFormat } from './files.js';
import { getopt, hasFlag, lastValue } from './getopt.js';
import { formatJson, parseOutputFormat } from './info.js';

export const CHECK_CLEAN = 0;
export const CHECK_NOT_COMPLETED = 1;
export const CHECK_CORRUPTIONS = 2;
export const CHECK_LEAKS = 3;

export function checkStatus(report: Qcow2CheckReport): number {
  if (report.checkErrors > 0) return CHECK_NOT_COMPLETED;
  if (report.corruptions > 0) return CHECK_CORRUPTIONS;
  if (report.leaks > 0) return CHECK_LEAKS;
  return CHECK_CLEAN;
}

/**
 * printf's %.2f: like toFixed(2), except that an exact tie rounds to even as C's printf does
 * (10.125 prints as 10.12), where toFixed would round it up.
 */
function percent(part: number, whole: number): string {
  const value = (100 * part) / whole;
  const hundredths = value * 100;
  const floor = Math.floor(hundredths);
  if (hundredths - floor === 0.5) return ((floor % 2 === 0 ? floor : floor + 1) / 100).toFixed(2);
  return value.toFixed(2);
}

export function formatCheckHuman(report: Qcow2CheckReport): string {
  const lines: string[] = [];
  if (report.corruptions === 0 && report.leaks === 0 && report.checkErrors === 0) {
    lines.push('No errors were found on the image.');
  } else {
    if (report.corruptions > 0) {
      lines.push('', `${report.corruptions} errors were found on the image.`, 'Data may be corrupted, or further writes to the image may corrupt it.');
    }
    if (report.leaks > 0) {
      lines.push('', `${report.leaks} leaked clusters were found on the image.`, 'This means waste of disk space, but no harm to data.');
    }
    if (report.checkErrors > 0) lines.push('', `${report.checkErrors} internal errors have occurred during the check.`);
  }
  if (report.totalClusters > 0 && report.allocatedClusters > 0) {
    lines.push(`${report.allocatedClusters}/${report.totalClusters} = ${percent(report.allocatedClusters, report.totalClusters)}% allocated, ` +
      `${percent(report.fragmentedClusters, report.allocatedClusters)}% fragmented, ` +
      `${percent(report.compressedClusters, report.allocatedClusters)}% compressed clusters`);
  }
  if (report.imageEndOffset > 0) lines.push(`Image end offset: ${report.imageEndOffset}`);
  return `${lines.join('\n')}\n`;
}

/** qemu-img's JSON: counts that are zero are left out, except check-errors; keys in qemu-img's order. */
export function checkJson(report: Qcow2CheckReport, filename: string): Record<string, unknown> {
  const json: Record<string, unknown> = {};
  const ifNonZero = (key: string, value: number) => {
    if (value !== 0) json[key] = value;
  };
  ifNonZero('image-end-offset', report.imageEndOffset);
  ifNonZero('compressed-clusters', report.compressedClusters);
  ifNonZero('total-clusters', report.totalClusters);
  ifNonZero('corruptions', report.corruptions);
  json['check-errors'] = report.checkErrors;
  ifNonZero('leaks', report.leaks);
  ifNonZero('allocated-clusters', report.allocatedClusters);
  json.filename = filename;
  json.format = 'qcow2';
  ifNonZero('fragmented-clusters', report.fragmentedClusters);
  return json;
}

export async function runCheck(argv: readonly string[]): Promise<number> {
  const parsed = getopt(argv, { short: { f: true, r: true, q: false, h: false, T: true, U: false }, long: { output: true, 'force-share': false, help: false } });
  const output = parseOutputFormat(lastValue(parsed, 'output'));
  const requested = lastValue(parsed, 'f');
  if (requested !== undefined) requireFormat(requested, '-f');
  const repair = lastValue(parsed, 'r');
  if (repair !== undefined && repair !== 'leaks' && repair !== 'all') throw new ImgError(`Unknown option value for -r (expecting 'leaks' or 'all'): ${repair}`);
  if (parsed.operands.length !== 1) throw new ImgError(parsed.operands.length === 0 ? 'Expecting one image file name' : `Invalid argument '${parsed.operands[1]}'`);
  const path = parsed.operands[0]!;
  const file = await openImageFile(path, false);
  let report: Qcow2CheckReport;
  try {
    const format = await resolveFormat(file, path, requested);
    if (format === 'raw') throw new ImgError('This image format does not support checks', STATUS_CHECK_UNSUPPORTED);
    if (repair !== undefined) throw new ImgError(`-r ${repair}: wkvm img checks without repairing; qemu-img check -r ${repair} repairs`);
    report = await checkQcow2(file, path);
  } catch (error) {
    if (error instanceof DiskImageError) throw new ImgError(`Could not open '${path}': ${error.reason}`, 1, { cause: error });
    throw error;
  } finally {
    await file.close();
  }
  for (const problem of report.problems) process.stderr.write(`${problem}\n`);
  if (report.abandoned !== false) process.stderr.write('wkvm img: Check failed\n');
  if (report.abandoned === 'before-counting') return CHECK_NOT_COMPLETED;
  if (output === 'json') process.stdout.write(formatJson(checkJson(report, path)));
  else if (!hasFlag(parsed, 'q')) process.stdout.write(formatCheckHuman(report));
  return checkStatus(report);
}
