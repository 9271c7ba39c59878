-- What a routing decision reads of the counters, without the waiting lists: per queue only when its oldest waiting
-- ticket arrived. Reading every waiting ticket for every decision grew with the backlog (a fifth of the CPU once
-- thousands waited); the index answers each queue's oldest, and a page of its oldest, without a scan.
CREATE INDEX counter_waiting_oldest ON counter_waiting (queue_id, since, ticket_key);

-- The per-agent and per-queue maps, which both readings share.
CREATE FUNCTION tierline_small_counters() RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
  SELECT jsonb_build_object(
    'status', (SELECT coalesce(jsonb_object_agg(agent_id, status), '{}') FROM counter_status),
    'load', (SELECT coalesce(jsonb_object_agg(agent_id, load), '{}') FROM counter_load),
    'rr', (SELECT coalesce(jsonb_object_agg(queue_id, value), '{}') FROM counter_rr),
    'rotation', (SELECT coalesce(jsonb_object_agg(queue_id, value), '{}') FROM counter_rotation)
  )
$fn$;

CREATE OR REPLACE FUNCTION tierline_counters() RETURNS json
LANGUAGE sql STABLE AS $fn$
  SELECT (tierline_small_counters() || jsonb_build_object('waiting', (SELECT coalesce(jsonb_object_agg(queue_id, w), '{}') FROM (
    SELECT queue_id, jsonb_object_agg(ticket_key, since) AS w FROM counter_waiting GROUP BY queue_id
  ) q)))::json
$fn$;

CREATE FUNCTION tierline_routing_counters() RETURNS json
LANGUAGE sql STABLE AS $fn$
  -- A skip scan over the index: one probe per queue for its next id and one for its oldest, not one per ticket.
  SELECT (tierline_small_counters() || jsonb_build_object('oldestWaiting', (SELECT coalesce(jsonb_object_agg(queue_id, (
      SELECT since FROM counter_waiting w WHERE w.queue_id = qs.queue_id ORDER BY since LIMIT 1
    )), '{}') FROM (
    WITH RECURSIVE walk AS (
      (SELECT queue_id FROM counter_waiting ORDER BY queue_id LIMIT 1)
      UNION ALL
      SELECT (SELECT c.queue_id FROM counter_waiting c WHERE c.queue_id > walk.queue_id ORDER BY c.queue_id LIMIT 1)
      FROM walk WHERE walk.queue_id IS NOT NULL
    )
    SELECT queue_id FROM walk WHERE queue_id IS NOT NULL
  ) qs)))::json
$fn$;
