-- Tierline's PostgreSQL schema, version 1. Whole records are kept as json (not jsonb) so they come back exactly as
-- written, key order included; the columns beside them exist only to be filtered, ordered and indexed on.
-- Times are epoch milliseconds as double precision: retry deadlines carry jitter fractions, and float8 holds every
-- integer millisecond exactly. `n` columns keep first-insertion order, the order the memory store lists things in.

CREATE TABLE configs (
  version integer PRIMARY KEY,
  config json NOT NULL,
  saved_at double precision NOT NULL,
  author text NOT NULL,
  note text NOT NULL
);

CREATE TABLE inbound (
  key text PRIMARY KEY,
  at double precision NOT NULL
);
CREATE INDEX inbound_at ON inbound (at);

CREATE TABLE tickets (
  n bigserial NOT NULL,
  key text PRIMARY KEY,
  doc json NOT NULL,
  status text NOT NULL,
  open boolean GENERATED ALWAYS AS (status NOT IN ('resolved', 'failed')) STORED,
  agent_id text,
  queue_id text,
  company_id text,
  topic_group text,
  topic_id double precision
);
CREATE INDEX tickets_open ON tickets (n) WHERE open;
CREATE INDEX tickets_agent ON tickets (agent_id, n);
CREATE INDEX tickets_queue ON tickets (queue_id, n);
CREATE INDEX tickets_company ON tickets (company_id);
CREATE INDEX tickets_topic ON tickets (topic_group, topic_id);

CREATE TABLE history (
  n bigserial NOT NULL,
  key text PRIMARY KEY,
  ticket_key text NOT NULL,
  seq integer NOT NULL,
  kind text NOT NULL,
  at double precision NOT NULL,
  queue_id text NOT NULL,
  agent_id text,
  rule_id text,
  tier text,
  doc json NOT NULL
);
-- Newest first is how every history view and report pages through outcomes.
CREATE INDEX history_at ON history (at DESC, seq DESC, n);
CREATE INDEX history_ticket ON history (ticket_key, at DESC, seq DESC);
CREATE INDEX history_tier ON history ((coalesce(tier, 'unknown')), at DESC);
CREATE INDEX history_queue ON history (queue_id, at DESC);
CREATE INDEX history_agent ON history (agent_id, at DESC);
CREATE INDEX history_kind ON history (kind, at DESC);

CREATE TABLE jobs (
  n bigserial NOT NULL,
  id text PRIMARY KEY,
  kind text NOT NULL,
  ticket_key text NOT NULL,
  payload json NOT NULL,
  attempts integer NOT NULL,
  next_at double precision NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'dead')),
  last_error text,
  lease_until double precision NOT NULL,
  -- The instance holding the lease: another instance leaves this ticket's other steps alone meanwhile, so one
  -- ticket's steps keep their order across instances.
  leased_by text,
  created_at double precision NOT NULL
);
CREATE INDEX jobs_due ON jobs (next_at, created_at, n) WHERE status = 'pending';
CREATE INDEX jobs_ticket ON jobs (ticket_key, lease_until) WHERE status = 'pending';
CREATE INDEX jobs_dead ON jobs (n) WHERE status = 'dead';

-- Completed job ids are kept so that re-enqueuing a finished step (a crash replay, a redelivered webhook) is a no-op.
CREATE TABLE done_jobs (
  id text PRIMARY KEY,
  done_at double precision NOT NULL
);

CREATE TABLE timers (
  n bigserial NOT NULL,
  id text PRIMARY KEY,
  kind text NOT NULL,
  at double precision NOT NULL,
  ticket_key text,
  agent_id text,
  lease_until double precision NOT NULL DEFAULT 0
);
CREATE INDEX timers_due ON timers (at, n);

-- Routing counters, one table per map of core/ports.ts Counters.
CREATE TABLE counter_load (agent_id text PRIMARY KEY, load double precision NOT NULL);
CREATE TABLE counter_status (agent_id text PRIMARY KEY, status text NOT NULL);
CREATE TABLE counter_rr (queue_id text PRIMARY KEY, value double precision NOT NULL);
CREATE TABLE counter_rotation (queue_id text PRIMARY KEY, value double precision NOT NULL);
CREATE TABLE counter_waiting (
  n bigserial NOT NULL,
  queue_id text NOT NULL,
  ticket_key text NOT NULL,
  since double precision NOT NULL,
  PRIMARY KEY (queue_id, ticket_key)
);

CREATE TABLE kv (
  n bigserial NOT NULL,
  ns text NOT NULL,
  key text NOT NULL,
  value json,
  PRIMARY KEY (ns, key)
);

-- Which instance holds each single-holder role (the Telegram MTProto connection per account), for the console and
-- for a clean handover. The advisory lock decides; this row only reports.
CREATE TABLE leaders (
  name text PRIMARY KEY,
  instance_id text NOT NULL,
  since double precision NOT NULL,
  heartbeat_at double precision NOT NULL,
  released boolean NOT NULL DEFAULT false
);

-- One pipeline step's changes in one statement (so one round trip and one atomic unit), applied in the same order as
-- the memory store's applyBatch. The batch arrives as json, not jsonb, so each record is stored as the exact text it
-- came in; fields are read from a jsonb copy of each element (reading them from json would re-parse it every time).
CREATE FUNCTION tierline_commit(b json, p_now double precision) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  k text;
  v json;
  v_tickets json; v_complete json; v_jobs json; v_cancel json; v_timers json; v_history json; v_counters jsonb;
  o jsonb;
BEGIN
  -- One pass over the batch; absent parts are skipped entirely.
  FOR k, v IN SELECT key, value FROM json_each(b) LOOP
    CASE k
      WHEN 'tickets' THEN v_tickets := v;
      WHEN 'completeJobs' THEN v_complete := v;
      WHEN 'jobs' THEN v_jobs := v;
      WHEN 'cancelTimers' THEN v_cancel := v;
      WHEN 'timers' THEN v_timers := v;
      WHEN 'history' THEN v_history := v;
      WHEN 'counters' THEN v_counters := v::jsonb;
      ELSE NULL;
    END CASE;
  END LOOP;

  IF v_tickets IS NOT NULL THEN
    -- Last write wins for a key repeated within one batch, as with a map.
    INSERT INTO tickets AS x (key, doc, status, agent_id, queue_id, company_id, topic_group, topic_id)
    SELECT j->>'key', e, j->>'status', j->>'agentId', j->>'queueId', j->>'companyId', j->'topic'->>'groupId', (j->'topic'->>'topicId')::double precision
    FROM (
      SELECT DISTINCT ON (j->>'key') e, j, i
      FROM (SELECT e, e::jsonb AS j, i FROM json_array_elements(v_tickets) WITH ORDINALITY AS a(e, i)) s
      ORDER BY j->>'key', i DESC
    ) d
    ORDER BY i
    ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc, status = EXCLUDED.status, agent_id = EXCLUDED.agent_id, queue_id = EXCLUDED.queue_id,
      company_id = EXCLUDED.company_id, topic_group = EXCLUDED.topic_group, topic_id = EXCLUDED.topic_id;
  END IF;

  IF v_complete IS NOT NULL THEN
    DELETE FROM jobs WHERE id IN (SELECT json_array_elements_text(v_complete));
    INSERT INTO done_jobs (id, done_at) SELECT DISTINCT id, p_now FROM json_array_elements_text(v_complete) AS a(id)
    ON CONFLICT (id) DO UPDATE SET done_at = EXCLUDED.done_at;
  END IF;

  IF v_jobs IS NOT NULL THEN
    -- First write wins within a batch; an id that exists or has completed is ignored.
    INSERT INTO jobs (id, kind, ticket_key, payload, attempts, next_at, status, last_error, lease_until, created_at)
    SELECT j->>'id', j->>'kind', j->>'ticketKey', e->'payload', (j->>'attempts')::integer, (j->>'nextAt')::double precision, j->>'status', j->>'lastError',
      (j->>'leaseUntil')::double precision, (j->>'createdAt')::double precision
    FROM (SELECT e, e::jsonb AS j, i FROM json_array_elements(v_jobs) WITH ORDINALITY AS a(e, i)) s
    WHERE NOT EXISTS (SELECT 1 FROM done_jobs d WHERE d.id = j->>'id')
    ORDER BY i
    ON CONFLICT (id) DO NOTHING;
  END IF;

  IF v_cancel IS NOT NULL THEN
    DELETE FROM timers WHERE id IN (SELECT json_array_elements_text(v_cancel));
  END IF;

  IF v_timers IS NOT NULL THEN
    -- Re-arming moves the deadline and drops any lease, so the new deadline fires.
    INSERT INTO timers AS x (id, kind, at, ticket_key, agent_id, lease_until)
    SELECT j->>'id', j->>'kind', (j->>'at')::double precision, j->>'ticketKey', j->>'agentId', 0
    FROM (
      SELECT DISTINCT ON (j->>'id') j, i FROM jsonb_array_elements(v_timers::jsonb) WITH ORDINALITY AS a(j, i) ORDER BY j->>'id', i DESC
    ) d
    ORDER BY i
    ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, at = EXCLUDED.at, ticket_key = EXCLUDED.ticket_key, agent_id = EXCLUDED.agent_id, lease_until = 0;
  END IF;

  IF v_history IS NOT NULL THEN
    INSERT INTO history (key, ticket_key, seq, kind, at, queue_id, agent_id, rule_id, tier, doc)
    SELECT j->>'key', j->>'ticketKey', (j->>'seq')::integer, j->>'kind', (j->>'at')::double precision, j->>'queueId', j->>'agentId', j->>'ruleId', j->>'tier', e
    FROM (SELECT e, e::jsonb AS j, i FROM json_array_elements(v_history) WITH ORDINALITY AS a(e, i)) s
    ORDER BY i
    ON CONFLICT (key) DO NOTHING;
  END IF;

  IF v_counters IS NOT NULL THEN
    -- In order: a load change clamps at zero step by step, and wait/unwait of one ticket may both appear.
    FOR o IN SELECT e FROM jsonb_array_elements(v_counters) AS a(e) LOOP
      CASE o->>'op'
        WHEN 'load' THEN
          INSERT INTO counter_load AS x (agent_id, load) VALUES (o->>'agentId', greatest(0, (o->>'delta')::double precision))
          ON CONFLICT (agent_id) DO UPDATE SET load = greatest(0, x.load + (o->>'delta')::double precision);
        WHEN 'rr' THEN
          INSERT INTO counter_rr (queue_id, value) VALUES (o->>'queueId', (o->>'value')::double precision)
          ON CONFLICT (queue_id) DO UPDATE SET value = EXCLUDED.value;
        WHEN 'rotation' THEN
          INSERT INTO counter_rotation (queue_id, value) VALUES (o->>'queueId', (o->>'value')::double precision)
          ON CONFLICT (queue_id) DO UPDATE SET value = EXCLUDED.value;
        WHEN 'status' THEN
          INSERT INTO counter_status (agent_id, status) VALUES (o->>'agentId', o->>'status')
          ON CONFLICT (agent_id) DO UPDATE SET status = EXCLUDED.status;
        WHEN 'wait' THEN
          INSERT INTO counter_waiting (queue_id, ticket_key, since) VALUES (o->>'queueId', o->>'ticketKey', (o->>'since')::double precision)
          ON CONFLICT (queue_id, ticket_key) DO UPDATE SET since = EXCLUDED.since;
        WHEN 'unwait' THEN
          DELETE FROM counter_waiting WHERE queue_id = o->>'queueId' AND ticket_key = o->>'ticketKey';
        ELSE
          RAISE EXCEPTION 'unknown counter op %', o->>'op' USING ERRCODE = '22023';
      END CASE;
    END LOOP;
  END IF;
END
$fn$;

-- All routing counters as one json object shaped like core/ports.ts Counters.
CREATE FUNCTION tierline_counters() RETURNS json
LANGUAGE sql STABLE AS $fn$
  SELECT json_build_object(
    'status', (SELECT coalesce(json_object_agg(agent_id, status), '{}') FROM counter_status),
    'load', (SELECT coalesce(json_object_agg(agent_id, load), '{}') FROM counter_load),
    'rr', (SELECT coalesce(json_object_agg(queue_id, value), '{}') FROM counter_rr),
    'rotation', (SELECT coalesce(json_object_agg(queue_id, value), '{}') FROM counter_rotation),
    'waiting', (SELECT coalesce(json_object_agg(queue_id, w), '{}') FROM (
      SELECT queue_id, json_object_agg(ticket_key, since ORDER BY n) AS w FROM counter_waiting GROUP BY queue_id
    ) q)
  )
$fn$;
