// Saving and rolling back the routing configuration: validate fully, then store as a new version. A rejected
// configuration throws ConfigError and leaves the one in force untouched.
import { parseRoutingConfig } from '../core/config.ts';
import { AppError } from '../core/errors.ts';
import type { Clock, ConfigVersion, Store } from '../core/ports.ts';

export function createConfigService(store: Store, clock: Clock, onSaved?: (v: ConfigVersion) => void | Promise<void>) {
  return {
    async save(input: unknown, meta: { author: string; note: string }): Promise<ConfigVersion> {
      const config = parseRoutingConfig(input);
      const v = await store.saveConfig(config, { ...meta, at: clock.now() });
      await onSaved?.(v);
      return v;
    },
    async rollback(version: number, author: string): Promise<ConfigVersion> {
      const target = (await store.configVersions()).find((v) => v.version === version);
      if (!target) throw new AppError('not_found', `No configuration version ${version}; list them with GET /api/v1/config/versions.`);
      const config = parseRoutingConfig(target.config);
      const v = await store.saveConfig(config, { author, note: `rollback to version ${version}`, at: clock.now() });
      await onSaved?.(v);
      return v;
    },
  };
}
