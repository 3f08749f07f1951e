import { raw, type Command } from '@skiff/shell';
import type { Cidr } from './cidr';
import { parseLiveTable, type LiveTable } from './live';
import { renderAbsent, renderTable, type TableModel } from './render';
import type { GuardPaths } from './guard';

export function listTableCommand(table: string): Command {
  return ['nft', '-j', 'list', 'table', 'inet', table];
}

/** Undefined when the table does not exist; throws on any other failure (nft missing, no permission). */
export function readLiveTable(result: { code: number; stdout: string; stderr: string }, table: string): LiveTable | undefined {
  if (result.code === 0) return parseLiveTable(result.stdout);
  if (/No such file or directory/.test(result.stderr)) return undefined;
  throw new Error(`reading the live table inet ${table} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
}

export function nftPaths(paths: GuardPaths): { next: string; lastGood: string } {
  return { next: `${paths.dir}/next.nft`, lastGood: `${paths.dir}/last-good.nft` };
}

export function checkCommand(file: string): Command {
  return ['nft', '-c', '-f', file];
}

export function applyCommand(file: string): Command {
  return ['nft', '-f', file];
}

/**
 * Saves the live table as a file that restores exactly it (or its absence): the same
 * create-delete-define idiom as the rendered file.
 */
export function saveLastGoodCommand(table: string, file: string): Command {
  return [raw('{'), 'printf', '%s', renderAbsent(table), raw(';'), raw('nft list table inet'), table, raw('2>/dev/null || true; } >'), file];
}

export function nftRenderFile(model: TableModel): string {
  return renderTable(model);
}

export type { Cidr };
