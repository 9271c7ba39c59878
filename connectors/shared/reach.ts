// One reachability check per connected account (HubSpot portal, Salesforce org), for /readyz: each account's cheap
// read is timed and its error kept, so the probe says which account cannot be reached and why.
import { errorMessage } from '../../core/errors.ts';
import type { Reachability } from '../../server/contracts.ts';

export async function reachAccounts(accounts: string[], call: (account: string) => Promise<unknown>): Promise<Reachability> {
  const results = await Promise.all(
    accounts.map(async (account) => {
      const t0 = performance.now();
      try {
        await call(account);
        return { account, ok: true, ms: Math.round(performance.now() - t0), error: null };
      } catch (err) {
        return { account, ok: false, ms: Math.round(performance.now() - t0), error: errorMessage(err) };
      }
    }),
  );
  return { ok: results.every((r) => r.ok), accounts: results };
}
