// A small Prometheus registry: counters and histograms keyed by name and labels, rendered in the text format.
// Enough for /metrics without a client library; gauges are read at scrape time through collectors.
import type { Metrics } from '../core/ports.ts';

const BUCKETS: Record<string, number[]> = {
  fine: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  default: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  seconds: [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400],
};

const HELP: Record<string, string> = {
  tierline_events_received_total: 'CRM events received (webhooks, outbound messages, change events)',
  tierline_events_duplicate_total: 'CRM events dropped as duplicate deliveries',
  tierline_decisions_total: 'Routing decisions by tier, queue and outcome',
  tierline_routing_skipped_total: 'CRM tickets not routed, by reason (closed_in_crm: already closed when Tierline read it)',
  tierline_overflow_total: 'Tickets that overflowed out of a queue',
  tierline_sla_total: 'First-response SLA results by tier and queue',
  tierline_escalations_total: 'Escalations by queue',
  tierline_first_response_seconds: 'Time from ticket arrival to the first agent reply',
  tierline_resolution_seconds: 'Time from ticket arrival to resolution',
  tierline_notify_seconds: 'Time from intake to the agent being notified in Telegram',
  tierline_job_failures_total: 'Failed outbox steps (retry or dead letter)',
  tierline_upstream_errors_total: 'Calls to HubSpot, Salesforce or Telegram that failed, by connector and error code',
  tierline_rate_limit_waits_total: 'Calls that came back rate limited (the step waits and runs again), by connector',
  tierline_http_request_seconds: 'HTTP request duration',
  tierline_step_own_seconds: 'Pipeline step time spent in the service itself (routing, store, scheduling)',
  tierline_step_upstream_seconds: 'Pipeline step time spent waiting on HubSpot, Salesforce or Telegram',
  tierline_step_lock_wait_seconds: 'Time a ticket change waited for its turn (routing decisions take turns across all tickets; other changes per ticket)',
  tierline_step_lock_hold_seconds: 'Time a ticket change held its turn (reading, deciding and saving)',
};

type Series = { labels: Record<string, string>; value: number; buckets?: number[]; sum?: number; count?: number };

export type Registry = Metrics & {
  render(): Promise<string>;
  gauge(name: string, help: string, read: () => Promise<{ labels?: Record<string, string>; value: number }[]>): void;
};

function labelKey(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

export function createRegistry(): Registry {
  const counters = new Map<string, Map<string, Series>>();
  const histograms = new Map<string, Map<string, Series>>();
  const gauges: { name: string; help: string; read: () => Promise<{ labels?: Record<string, string>; value: number }[]> }[] = [];
  // Business durations (first response, resolution) span hours; request and step durations span milliseconds.
  const bucketsOf = (name: string) =>
    name.startsWith('tierline_step_') ? BUCKETS.fine! : name.endsWith('_seconds') && !name.startsWith('tierline_http') && !name.startsWith('tierline_notify') ? BUCKETS.seconds! : BUCKETS.default!;
  return {
    inc(name, labels = {}, by = 1) {
      const m = counters.get(name) ?? new Map<string, Series>();
      counters.set(name, m);
      const k = labelKey(labels);
      const s = m.get(k) ?? { labels, value: 0 };
      s.value += by;
      m.set(k, s);
    },
    observe(name, labels, value) {
      const m = histograms.get(name) ?? new Map<string, Series>();
      histograms.set(name, m);
      const k = labelKey(labels);
      const b = bucketsOf(name);
      const s = m.get(k) ?? { labels, value: 0, buckets: new Array(b.length).fill(0), sum: 0, count: 0 };
      for (let i = 0; i < b.length; i++) if (value <= b[i]!) s.buckets![i]! += 1;
      s.sum! += value;
      s.count! += 1;
      m.set(k, s);
    },
    gauge(name, help, read) {
      gauges.push({ name, help, read });
    },
    async render() {
      const out: string[] = [];
      for (const [name, m] of counters) {
        out.push(`# HELP ${name} ${HELP[name] ?? name}`, `# TYPE ${name} counter`);
        for (const [k, s] of m) out.push(`${name}${k ? `{${k}}` : ''} ${s.value}`);
      }
      for (const [name, m] of histograms) {
        const b = bucketsOf(name);
        out.push(`# HELP ${name} ${HELP[name] ?? name}`, `# TYPE ${name} histogram`);
        for (const [k, s] of m) {
          const sep = k ? ',' : '';
          b.forEach((le, i) => out.push(`${name}_bucket{${k}${sep}le="${le}"} ${s.buckets![i]}`));
          out.push(`${name}_bucket{${k}${sep}le="+Inf"} ${s.count}`, `${name}_sum${k ? `{${k}}` : ''} ${s.sum}`, `${name}_count${k ? `{${k}}` : ''} ${s.count}`);
        }
      }
      for (const g of gauges) {
        out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
        for (const v of await g.read()) out.push(`${g.name}${v.labels && Object.keys(v.labels).length ? `{${labelKey(v.labels)}}` : ''} ${v.value}`);
      }
      return out.join('\n') + '\n';
    },
  };
}
