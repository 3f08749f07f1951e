import type { Command, Executor } from '@skiff/shell';
import type { Backend, LiveState } from './backend';
import { liveMatches, liveSet } from './live';
import { applyCommand, checkCommand, listTableCommand, nftPaths, readLiveTable, saveLastGoodCommand } from './nftables';
import { renderTable, type TableModel } from './render';

const TIMEOUT = 60;

export function nftablesBackend(model: TableModel): Backend {
  const table = model.table;
  const read = async (server: Executor) =>
    readLiveTable(await server.run([listTableCommand(table)], { allowFailure: true, description: `read table inet ${table}`, timeoutSeconds: TIMEOUT }), table);
  return {
    name: 'nftables',
    async inspect(server): Promise<LiveState> {
      const live = await read(server);
      if (!live) return { upToDate: false, managed: [] };
      const managedSets = live.sets.filter((s) => ['cf4', 'cf6', 'extra4', 'extra6', 'ssh4', 'ssh6'].includes(s.name));
      return {
        upToDate: liveMatches(live, model),
        cf: { ipv4: liveSet(live, 'cf4'), ipv6: liveSet(live, 'cf6') },
        managed: managedSets.flatMap((s) => s.elements),
      };
    },
    async stage(server, paths): Promise<Command[]> {
      const files = nftPaths(paths);
      await server.upload(files.next, renderTable(model), { mode: 0o600, description: `upload the rendered table inet ${table}` });
      await server.run([checkCommand(files.next)], { description: 'check the rendered table (nft -c)', timeoutSeconds: TIMEOUT });
      await server.run([saveLastGoodCommand(table, files.lastGood)], { description: 'save the live table as last-good', timeoutSeconds: TIMEOUT });
      return [applyCommand(files.lastGood)];
    },
    async apply(server, paths) {
      await server.run([applyCommand(nftPaths(paths).next)], { description: `replace table inet ${table} in one transaction`, timeoutSeconds: TIMEOUT });
    },
    async verify(server) {
      const live = await read(server);
      return live !== undefined && liveMatches(live, model);
    },
  };
}
