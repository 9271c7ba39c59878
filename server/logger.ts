// Structured JSON logs, one line per event. Every configured secret value is redacted wherever it appears, as a
// second line of defence behind "never log a secret" (a connector that forgets still cannot leak one).
import type { Logger } from '../core/ports.ts';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type LogLevel = keyof typeof LEVELS;

export function createLogger(opts: { level?: LogLevel; secrets?: () => string[]; write?: (line: string) => void; base?: Record<string, unknown> } = {}): Logger {
  const min = LEVELS[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const redact = (line: string) => {
    for (const s of opts.secrets?.() ?? []) if (s && line.includes(s)) line = line.split(s).join('[redacted]');
    return line.replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g, '$1[redacted]');
  };
  const make = (base: Record<string, unknown>): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
      if (LEVELS[level] < min) return;
      let line: string;
      try {
        line = JSON.stringify({ t: new Date().toISOString(), level, msg, ...base, ...fields }, errorReplacer);
      } catch {
        line = JSON.stringify({ t: new Date().toISOString(), level, msg, ...base, note: 'fields not serialisable' });
      }
      write(redact(line));
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make(opts.base ?? {});
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  return value;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger };
