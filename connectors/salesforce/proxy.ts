// Proxy handling for everything jsforce sends. jsforce reads https_proxy/http_proxy once at import and sends every
// request through it, ignoring NO_PROXY, and its streaming client (faye) does the same on its own; with a corporate
// proxy set, calls to a loopback sandbox (or to hosts listed in NO_PROXY) would go to the proxy and fail. Here the
// proxy is decided per request: never for loopback, never for NO_PROXY matches, and an empty variable means none.
// jsforce's own HTTP retries are switched off: retries are ours (client.ts), with backoff we control and can test.
import { createRequire } from 'node:module';
import { Transport } from 'jsforce/lib/transport.js';

type Env = Record<string, string | undefined>;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function noProxyMatches(host: string, port: string, list: string): boolean {
  for (const raw of list.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const [h, p] = entry.startsWith('[') ? [entry.slice(1, entry.indexOf(']')), entry.split(']:')[1]] : (entry.split(':') as [string, string | undefined]);
    if (p && p !== port) continue;
    const bare = h!.replace(/^\*?\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return true;
  }
  return false;
}

/** The proxy URL to use for a request to target, or undefined to connect directly. */
export function proxyFor(target: string, env: Env = process.env): string | undefined {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    return undefined;
  }
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isLoopback(host)) return undefined;
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  if (noProxyMatches(host, port, env.no_proxy || env.NO_PROXY || '')) return undefined;
  const proxy = u.protocol === 'https:' ? env.https_proxy || env.HTTPS_PROXY || env.http_proxy || env.HTTP_PROXY : env.http_proxy || env.HTTP_PROXY;
  return proxy || undefined;
}

type HttpRequestArgs = Parameters<Transport['httpRequest']>;

/** A jsforce transport that picks the proxy per request and leaves retries to the caller. */
export class DirectAwareTransport extends Transport {
  override httpRequest(req: HttpRequestArgs[0], options: HttpRequestArgs[1] = {}): ReturnType<Transport['httpRequest']> {
    // An explicit `httpProxy: undefined` overrides jsforce's import-time default (the spread in request.js).
    const opts = { ...options, httpProxy: proxyFor(req.url), retry: { maxRetries: 0 } } as HttpRequestArgs[1];
    return super.httpRequest(req, opts);
  }
}

let fayePatched = false;

/**
 * faye (jsforce streaming) looks up http_proxy for every transport it makes. Its lookup is replaced, once per
 * process, by proxyFor so that streaming follows the same rules as REST.
 */
export function patchStreamingProxy(): void {
  if (fayePatched) return;
  fayePatched = true;
  const fromJsforce = createRequire(createRequire(import.meta.url).resolve('jsforce'));
  const FayeTransport = fromJsforce('faye/src/transport/transport.js') as { prototype: { _findProxy: () => string | undefined; endpoint?: { href?: string } } };
  FayeTransport.prototype._findProxy = function findProxy(this: { endpoint?: { href?: string } }) {
    return this.endpoint?.href ? proxyFor(this.endpoint.href) : undefined;
  };
}
