// A CometD (Bayeux 1.0, long-polling) endpoint with Salesforce's streaming extensions: OAuth header on every request,
// replay ids (ext.replay: -1 new only, -2 all retained, N after N), retained change events, and the advice Salesforce
// sends when a session is no longer valid. jsforce's streaming client (faye) talks to it unchanged.

type Msg = Record<string, unknown> & { channel?: string; id?: string; clientId?: string };
type Respond = (status: number, body: unknown) => void;
type Client = { id: string; subs: Set<string>; queue: Msg[]; pending: { respond: Respond; reply: Msg; timer: NodeJS.Timeout } | null };

export type CometdOptions = {
  channels: string[];
  /** Is this access token valid right now? */
  authorize: (token: string | null) => boolean;
  holdMs?: number;
  retain?: number;
};

export function createCometd(opts: CometdOptions) {
  const holdMs = opts.holdMs ?? 20_000;
  const retain = opts.retain ?? 1000;
  const clients = new Map<string, Client>();
  const log = new Map<string, { replayId: number; msg: Msg }[]>(opts.channels.map((c) => [c, []]));
  let replayId = 0;
  let nextClient = 1;
  let closed = false;

  const tokenOf = (auth: string | undefined) => {
    const m = /^(?:OAuth|Bearer)\s+(.+)$/i.exec(auth ?? '');
    return m ? m[1]!.trim() : null;
  };

  function flush(c: Client): void {
    if (!c.pending || !c.queue.length) return;
    const p = c.pending;
    c.pending = null;
    clearTimeout(p.timer);
    p.respond(200, [...c.queue.splice(0), p.reply]);
  }

  function publish(channel: string, payload: Record<string, unknown>): number {
    const list = log.get(channel);
    if (!list) throw new Error(`unknown channel ${channel}`);
    replayId += 1;
    const msg: Msg = { channel, data: { schema: 'tierline-sandbox-schema', payload, event: { replayId } } };
    list.push({ replayId, msg });
    if (list.length > retain) list.splice(0, list.length - retain);
    for (const c of clients.values()) {
      if (!c.subs.has(channel)) continue;
      c.queue.push(msg);
      flush(c);
    }
    return replayId;
  }

  /** Handles one POST to /cometd/<version>; respond is called once (possibly much later, for a held connect). */
  function handle(body: unknown, authHeader: string | undefined, respond: Respond): void {
    const msgs = (Array.isArray(body) ? body : [body]) as Msg[];
    if (closed || !msgs.length || msgs.some((m) => !m || typeof m !== 'object' || typeof m.channel !== 'string')) return respond(400, [{ successful: false, error: '400::Bad request' }]);
    const token = tokenOf(authHeader);
    const authed = opts.authorize(token);
    const replies: Msg[] = [];
    let held: { c: Client; reply: Msg } | null = null;
    for (const m of msgs) {
      const base = { channel: m.channel, ...(m.id ? { id: m.id } : {}) };
      if (m.channel === '/meta/handshake') {
        if (!authed) {
          replies.push({ ...base, successful: false, error: '403::Handshake denied', advice: { reconnect: 'none' } });
          continue;
        }
        const id = `sbx${(nextClient++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
        clients.set(id, { id, subs: new Set(), queue: [], pending: null });
        replies.push({ ...base, successful: true, version: '1.0', minimumVersion: '1.0', clientId: id, supportedConnectionTypes: ['long-polling'], advice: { interval: 0, timeout: holdMs, reconnect: 'retry' }, ext: { replay: true, 'payload.format': true } });
        continue;
      }
      const c = typeof m.clientId === 'string' ? clients.get(m.clientId) : undefined;
      if (!c) {
        replies.push({ ...base, successful: false, error: '403::Unknown client', advice: { reconnect: 'handshake', interval: 0 } });
        continue;
      }
      if (!authed) {
        clients.delete(c.id);
        replies.push({ ...base, clientId: c.id, successful: false, error: '401::Authentication invalid', advice: { reconnect: 'handshake', interval: 0 } });
        continue;
      }
      switch (m.channel) {
        case '/meta/connect': {
          const reply: Msg = { ...base, clientId: c.id, successful: true, advice: { interval: 0, timeout: holdMs, reconnect: 'retry' } };
          if (c.queue.length) replies.push(...c.queue.splice(0), reply);
          else held = { c, reply };
          break;
        }
        case '/meta/subscribe': {
          const sub = String(m.subscription ?? '');
          const list = log.get(sub);
          if (!list) {
            replies.push({ ...base, clientId: c.id, subscription: sub, successful: false, error: `400::The channel you requested to subscribe to does not exist {${sub}}` });
            break;
          }
          const ext = (m.ext as { replay?: Record<string, unknown> } | undefined)?.replay;
          const from = ext && typeof ext[sub] === 'number' ? (ext[sub] as number) : -1;
          const oldest = list[0]?.replayId ?? replayId + 1;
          if (from >= 0 && from < oldest - 1 && list.length >= retain) {
            replies.push({ ...base, clientId: c.id, subscription: sub, successful: false, error: `400::The replayId {${from}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.` });
            break;
          }
          c.subs.add(sub);
          if (from === -2) c.queue.push(...list.map((e) => e.msg));
          else if (from >= 0) c.queue.push(...list.filter((e) => e.replayId > from).map((e) => e.msg));
          replies.push({ ...base, clientId: c.id, subscription: sub, successful: true });
          break;
        }
        case '/meta/unsubscribe':
          c.subs.delete(String(m.subscription ?? ''));
          replies.push({ ...base, clientId: c.id, subscription: m.subscription, successful: true });
          break;
        case '/meta/disconnect':
          if (c.pending) {
            clearTimeout(c.pending.timer);
            c.pending.respond(200, [c.pending.reply]);
          }
          clients.delete(c.id);
          replies.push({ ...base, clientId: c.id, successful: true });
          break;
        default:
          replies.push({ ...base, clientId: c.id, successful: false, error: '403::Publishing is not supported' });
      }
    }
    if (!held) return respond(200, replies);
    if (replies.length) {
      // A batch mixing a connect with other messages: answer at once rather than hold the others.
      return respond(200, [...replies, held.reply]);
    }
    const { c, reply } = held;
    if (c.pending) {
      clearTimeout(c.pending.timer);
      c.pending.respond(200, [c.pending.reply]);
    }
    const timer = setTimeout(() => {
      if (c.pending?.timer === timer) {
        c.pending = null;
        respond(200, [reply]);
      }
    }, holdMs);
    timer.unref();
    c.pending = { respond, reply, timer };
    flush(c);
  }

  return {
    handle,
    publish,
    /** Retained events of a channel (newest last). */
    events: (channel: string) => (log.get(channel) ?? []).map((e) => structuredClone(e.msg)),
    clientCount: () => clients.size,
    close() {
      closed = true;
      for (const c of clients.values()) {
        if (!c.pending) continue;
        clearTimeout(c.pending.timer);
        c.pending.respond(200, [c.pending.reply]);
        c.pending = null;
      }
      clients.clear();
    },
  };
}
