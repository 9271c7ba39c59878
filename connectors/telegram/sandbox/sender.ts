// The fake network under GramJS: it takes the place of the client's MTProtoSender, so everything above it is the
// real library. Each request arrives as GramJS's own RequestState, whose bytes GramJS serialised from its TL schema
// (a request it cannot serialise fails before reaching us); the sandbox decodes those bytes, answers with a TL object
// that is serialised and read back with the request's own readResult, and errors become GramJS's RPC error classes
// (FloodWaitError, SlowModeWaitError, ...). Updates are serialised the same way and handed to GramJS's update
// handler, so event handlers see exactly what a live connection would give them.
import { Api, type TelegramClient } from 'telegram';
import { _handleUpdate } from 'telegram/client/updates.js';
import { RPCMessageToError } from 'telegram/errors/index.js';
import { BinaryReader } from 'telegram/extensions/index.js';
import { UpdateConnectionState } from 'telegram/network/index.js';
import { RequestState } from 'telegram/network/RequestState.js';
import type { Timers } from '../clock.ts';
import type { Viewer, World } from './world.ts';

/** The private parts of TelegramClient the fake sender plugs into (GramJS 2.26). */
type ClientInternals = {
  _sender?: unknown;
  _connectedDeferred: { resolve(): void };
  _loopStarted: boolean;
};

const VECTOR = 0x1cb5c415;
const BOOL_TRUE = 0x997275b5;
const BOOL_FALSE = 0xbc799737;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

/** TL bytes of a result, including the bare vectors and Bools that methods like users.getUsers return. */
export function tlBytes(v: unknown): Buffer {
  if (Array.isArray(v)) return Buffer.concat([u32(VECTOR), u32(v.length), ...v.map(tlBytes)]);
  if (v === true) return u32(BOOL_TRUE);
  if (v === false) return u32(BOOL_FALSE);
  const o = v as { getBytes?: () => Buffer };
  if (!o || typeof o.getBytes !== 'function') throw new Error('sandbox: result is not a TL object');
  return o.getBytes();
}

let nextId = 0;

export class SandboxConnection implements Viewer {
  readonly id = ++nextId;
  accountId: string | null;
  // Fields GramJS reads on its sender.
  userDisconnected = false;
  isReconnecting = false;
  _disconnected = false;
  readonly authKey = { getKey: () => undefined, setKey: async () => {} };

  private up = true;
  private waiting: RequestState[] = [];
  private held: (() => void)[] = [];
  private readonly world: World;
  private readonly client: TelegramClient;
  private readonly timers: Timers;
  private readonly latencyMs: number;
  private readonly onSerialiseError: (err: unknown) => void;

  constructor(opts: { world: World; client: TelegramClient; accountId: string | null; timers: Timers; latencyMs: number; onSerialiseError: (err: unknown) => void }) {
    this.world = opts.world;
    this.client = opts.client;
    this.accountId = opts.accountId;
    this.timers = opts.timers;
    this.latencyMs = opts.latencyMs;
    this.onSerialiseError = opts.onSerialiseError;
  }

  /** Puts this connection under the client in place of its MTProtoSender. */
  install(): void {
    const c = this.client as unknown as ClientInternals;
    c._sender = this;
    // The keep-alive ping loop is for real sockets; with it off nothing runs on real timers.
    c._loopStarted = true;
    c._connectedDeferred.resolve();
    this.world.viewers.add(this);
  }

  isConnected(): boolean {
    return this.up && !this.userDisconnected;
  }

  isUp(): boolean {
    return this.isConnected();
  }

  addStateToQueue(state: RequestState): void {
    if (!this.isConnected()) {
      // As MTProtoSender does while reconnecting: requests wait and go out once the link is back.
      this.waiting.push(state);
      return;
    }
    this.process(state);
  }

  async send(request: Api.AnyRequest): Promise<unknown> {
    const state = new RequestState(request);
    this.addStateToQueue(state);
    return state.promise;
  }

  async disconnect(): Promise<void> {
    this.userDisconnected = true;
    this._disconnected = true;
    this.up = false;
    this.world.viewers.delete(this);
    for (const s of this.waiting.splice(0)) s.reject(new Error('Disconnect'));
  }

  reconnect(): void {
    this.restore();
  }

  /** The network drops: updates sent meanwhile are lost (GramJS has no gap recovery), requests wait. */
  cut(): void {
    if (!this.up || this.userDisconnected) return;
    this.up = false;
    this.deliverUpdate(new UpdateConnectionState(UpdateConnectionState.disconnected), true);
  }

  restore(): void {
    if (this.up || this.userDisconnected) return;
    this.up = true;
    for (const fn of this.held.splice(0)) fn();
    this.deliverUpdate(new UpdateConnectionState(UpdateConnectionState.connected), true);
    for (const s of this.waiting.splice(0)) this.process(s);
  }

  push(updates: Api.TypeUpdates): void {
    let decoded: unknown;
    try {
      decoded = new BinaryReader(tlBytes(updates)).tgReadObject();
    } catch (err) {
      this.onSerialiseError(err);
      return;
    }
    this.deliverUpdate(decoded, false);
  }

  private later(fn: () => void): void {
    if (this.latencyMs > 0) this.timers.setTimer(fn, this.latencyMs);
    else queueMicrotask(fn);
  }

  private deliverUpdate(update: unknown, always: boolean): void {
    this.later(() => {
      if (!always && !this.isConnected()) return; // lost in the gap
      _handleUpdate(this.client, update as Api.TypeUpdate);
    });
  }

  private process(state: RequestState): void {
    let req: { className: string } & Record<string, unknown>;
    try {
      // What Telegram receives is the bytes GramJS produced, not the object the caller built.
      req = new BinaryReader(state.data).tgReadObject() as typeof req;
    } catch (err) {
      this.onSerialiseError(err);
      state.reject(err);
      return;
    }
    const out = this.world.handle(this, req);
    if ('drop' in out) return; // done on the server, the answer never arrives
    const respond = () => {
      if ('error' in out) {
        const rpc = new BinaryReader(new Api.RpcError({ errorCode: out.error.code, errorMessage: out.error.message }).getBytes()).tgReadObject() as Api.RpcError;
        state.reject(RPCMessageToError(rpc, state.request));
        return;
      }
      try {
        state.resolve(state.request.readResult(new BinaryReader(tlBytes(out.result))));
      } catch (err) {
        this.onSerialiseError(err);
        state.reject(err);
      }
    };
    this.later(() => {
      if (this.isConnected()) respond();
      else this.held.push(respond);
    });
  }
}
