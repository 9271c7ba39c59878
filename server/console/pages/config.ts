// Configuration: rules, queues, agents, groups and tiering edited as JSON per section, checked by the same validator
// the API uses, with each problem shown at its field ("rules[2] (id "billing") → queue: unknown queue …"). Saving
// keeps every version; any earlier one can be made current again. Field mappings are edited per CRM account.
import { ConfigError, type ConfigProblem } from '../../../core/config.ts';
import { AppError } from '../../../core/errors.ts';
import type { Auth } from '../auth.ts';
import type { MappingVersion } from '../../contracts.ts';
import type { ConsoleContext, Routes } from '../context.ts';
import { describePath, draftFromForm, parseDraft, sectionOf, textOf, type DraftText, type Section } from '../draft.ts';
import { csrfField, empty, html, notice, raw, shell, tableWrap, time, type Html } from '../ui.ts';

const HELP: Record<Section, string> = {
  tiering: 'Thresholds (highest first) that derive a tier from lifetime value or annual revenue when the CRM has none.',
  rules: 'Checked in order; the first rule whose conditions all hold picks the queue. Conditions: {field, op: equals|in|gte|lte|exists|missing, value}.',
  defaultQueue: 'The queue for tickets no rule matches (and for tickets a rule could not judge because data was missing).',
  queues: 'Each queue: strategy (round_robin, least_busy, skills), member agents, first-response SLA in seconds, overflow, escalation, rotation, Telegram groups.',
  agents: 'Each agent: id, name, Telegram user id, status (available, away, offline), capacity (open tickets), skills, languages.',
  groups: 'Telegram forum groups that carry the topics.',
};

/** Most edited first. */
const ORDER: readonly Section[] = ['rules', 'defaultQueue', 'queues', 'agents', 'groups', 'tiering'];

/** The section editor shared by the configuration and what-if pages. */
export function editor(draft: DraftText, problems: ConfigProblem[], input: Record<string, unknown> | null): Html {
  const bySection = new Map<Section | null, ConfigProblem[]>();
  for (const p of problems) {
    const s = sectionOf(p.path);
    bySection.set(s, [...(bySection.get(s) ?? []), p]);
  }
  const list = (ps: ConfigProblem[]) => html`<ul class="problems">${ps.map((p) => html`<li><code>${describePath(p.path, input)}</code>: ${p.message}</li>`)}</ul>`;
  const general = bySection.get(null) ?? [];
  return html`
${problems.length
  ? html`<div class="notice bad" role="alert" id="problems" tabindex="-1"><strong>${problems.length === 1 ? 'One problem' : `${problems.length} problems`} to fix; nothing was saved and the configuration in force is unchanged.</strong>
${general.length ? list(general) : ''}
<ul class="problems">${ORDER.filter((s) => bySection.has(s)).map((s) => html`<li><a href="#field-${s}">${s}</a>: ${bySection.get(s)!.length} problem${bySection.get(s)!.length > 1 ? 's' : ''}</li>`)}</ul></div>`
  : ''}
${ORDER.map((s) => {
  const ps = bySection.get(s) ?? [];
  const describedBy = `help-${s}${ps.length ? ` err-${s}` : ''}`;
  return html`<div class="field">
<label for="field-${s}">${s}</label>
<p class="muted" id="help-${s}">${HELP[s]}</p>
${ps.length ? html`<div class="notice bad" id="err-${s}">${list(ps)}</div>` : ''}
${s === 'defaultQueue'
  ? html`<input type="text" id="field-${s}" name="${s}" value="${draft[s]}" aria-describedby="${describedBy}"${ps.length ? raw(' aria-invalid="true"') : ''} spellcheck="false" autocomplete="off">`
  : html`<textarea id="field-${s}" name="${s}" rows="${Math.min(30, Math.max(6, draft[s].split('\n').length + 1))}" aria-describedby="${describedBy}"${ps.length ? raw(' aria-invalid="true"') : ''} spellcheck="false" autocomplete="off">${draft[s]}</textarea>`}
</div>`;
})}`;
}

export function mountConfig(app: Routes, ctx: ConsoleContext, auth: Auth): void {
  const author = 'console:admin';

  const page = async (csrf: string, draft: DraftText | null, problems: ConfigProblem[], input: Record<string, unknown> | null, message: Html | string, note: string) => {
    const [current, versions] = await Promise.all([ctx.store.getConfig(), ctx.store.configVersions()]);
    const d = draft ?? textOf(current?.config ?? null);
    return shell({
      title: 'Configuration',
      active: '/config',
      csrf,
      sandbox: ctx.sandbox,
      body: html`
<h1>Configuration</h1>
<p class="lead">${current ? html`Version ${current.version} is in force (saved ${time(current.savedAt)} by ${current.author}${current.note ? html`: “${current.note}”` : ''}).` : 'No configuration saved yet: tickets wait until one is.'}
Field mappings per CRM account are on <a href="/config/mappings">their own page</a>.</p>
<nav aria-label="On this page" class="actions"><span class="muted">Jump to:</span> ${ORDER.map((s) => html`<a href="#field-${s}">${s}</a>`)} <a href="#versions-h">versions</a></nav>
${message}
<form method="post" action="/config" novalidate>
${csrfField(csrf)}
${editor(d, problems, input)}
<div class="field"><label for="field-note">Note for this version</label><input type="text" id="field-note" name="note" value="${note}" maxlength="500" size="60" placeholder="what changed and why"></div>
<div class="actions">
<button type="submit" name="action" value="validate" class="secondary">Check without saving</button>
<button type="submit" formaction="/replay" class="secondary">What-if: replay recent tickets with this draft</button>
<button type="submit" name="action" value="save">Save as a new version</button>
</div>
</form>
<section aria-labelledby="versions-h"><h2 id="versions-h">Versions</h2>
${versions.length
  ? tableWrap('Configuration versions', html`<table><thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th><th scope="col">Note</th><th scope="col">Actions</th></tr></thead><tbody>
${versions.map((v) => html`<tr><th scope="row">${v.version}${v.version === current?.version ? html` <span class="badge ok">in force</span>` : ''}</th><td>${time(v.savedAt)}</td><td>${v.author}</td><td>${v.note || '–'}</td>
<td><a href="/config/versions/${v.version}">View</a>${v.version !== current?.version ? html` · <form class="inline" method="post" action="/config/rollback" data-confirm="Make version ${v.version} the configuration in force? It is saved as a new version; nothing is lost.">${csrfField(csrf)}<input type="hidden" name="version" value="${v.version}"><button type="submit" class="secondary">Roll back to version ${v.version}</button></form>` : ''}</td></tr>`)}
</tbody></table>`)
  : empty('No versions yet.', 'Edit the sections above and save; each save becomes a version you can roll back to.')}
</section>`,
    });
  };

  app.get('/config', auth.requirePage, async (c) => {
    const q = c.req.query();
    const msg = q.saved ? notice('ok', q.rolledBack ? `Rolled back: version ${q.rolledBack} is in force again, saved as version ${q.saved}.` : `Saved version ${q.saved}; new tickets route with it now.`) : '';
    return c.html(await page(c.get('session').csrf, null, [], null, msg, ''));
  });

  app.post('/config', auth.requireForm, async (c) => {
    const form = await c.req.parseBody();
    const draft = draftFromForm(form);
    const note = typeof form.note === 'string' ? form.note.slice(0, 500) : '';
    const csrf = c.get('session').csrf;
    const parsed = parseDraft(draft);
    if (!parsed.ok) return c.html(await page(csrf, draft, parsed.problems, parsed.input, '', note), 422);
    if (form.action !== 'save') return c.html(await page(csrf, draft, [], parsed.input, notice('ok', 'The draft is valid. It is not saved yet.'), note));
    try {
      const v = await ctx.saveConfig(parsed.input, { author, note: note || 'edited in the console' });
      ctx.logger.info('console: configuration saved', { version: v.version });
      return c.redirect(`/config?saved=${v.version}`, 303);
    } catch (err) {
      if (err instanceof ConfigError) return c.html(await page(csrf, draft, err.problems, parsed.input, '', note), 422);
      throw err;
    }
  });

  app.get('/config/versions/:version', auth.requirePage, async (c) => {
    const csrf = c.get('session').csrf;
    const n = Number(c.req.param('version'));
    const [versions, current] = await Promise.all([ctx.store.configVersions(), ctx.store.getConfig()]);
    const v = versions.find((x) => x.version === n);
    const body = v
      ? html`<p><a href="/config">← Configuration</a></p><h1>Version ${v.version}${v.version === current?.version ? html` <span class="badge ok">in force</span>` : ''}</h1>
<p class="lead">Saved ${time(v.savedAt)} by ${v.author}${v.note ? html`: “${v.note}”` : ''}.</p>
${v.version !== current?.version ? html`<form method="post" action="/config/rollback" class="actions">${csrfField(csrf)}<input type="hidden" name="version" value="${v.version}"><button type="submit">Roll back to version ${v.version}</button></form>` : ''}
<pre>${JSON.stringify(v.config, null, 2)}</pre>`
      : html`<h1>Version not found</h1>${empty(`There is no version ${c.req.param('version')}.`, html`See the list on <a href="/config">Configuration</a>.`)}`;
    return c.html(shell({ title: v ? `Version ${v.version}` : 'Version not found', active: '/config', csrf, sandbox: ctx.sandbox, body }), v ? 200 : 404);
  });

  app.post('/config/rollback', auth.requireForm, async (c) => {
    const form = await c.req.parseBody();
    const version = Number(form.version);
    const csrf = c.get('session').csrf;
    if (!Number.isInteger(version) || version < 1) return c.html(await page(csrf, null, [], null, notice('bad', 'Pick a version to roll back to from the list.'), ''), 400);
    try {
      const v = await ctx.rollbackConfig(version, author);
      ctx.logger.info('console: configuration rolled back', { to: version, version: v.version });
      return c.redirect(`/config?saved=${v.version}&rolledBack=${version}`, 303);
    } catch (err) {
      if (err instanceof AppError || err instanceof ConfigError) {
        const msg = err instanceof ConfigError ? `Version ${version} no longer passes validation: ${err.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}` : err.message;
        return c.html(await page(csrf, null, [], null, notice('bad', msg), ''), err instanceof AppError && err.code === 'not_found' ? 404 : 422);
      }
      throw err;
    }
  });

  // ---------------------------------------------------------------- mappings

  const mappingsPage = async (csrf: string, message: Html | string, failed?: { crm: string; account: string; text: string; error: string }) => {
    const ids = Object.keys(ctx.mappings);
    const sections = await Promise.all(
      ids.map(async (id) => {
        const m = ctx.mappings[id]!;
        const accounts = await m.accounts();
        const forms = await Promise.all(
          accounts.map(async (account) => {
            const isFailed = failed && failed.crm === id && failed.account === account;
            const [value, versions] = await Promise.all([m.get(account), m.versions(account)]);
            const text = isFailed ? failed.text : JSON.stringify(value, null, 2);
            return html`${mappingForm(csrf, id, account, text, isFailed ? failed.error : null)}${mappingVersions(csrf, id, account, versions)}`;
          }),
        );
        const addFailed = failed && failed.crm === id && !accounts.includes(failed.account) ? failed : null;
        return html`<section aria-labelledby="map-${id}-h"><h2 id="map-${id}-h">${id === 'hubspot' ? 'HubSpot' : id === 'salesforce' ? 'Salesforce' : id}</h2>
${accounts.length ? forms : empty(`No ${id} account has a mapping yet.`, installHint(ctx, id))}
<details${addFailed ? raw(' open') : ''}><summary>Add a mapping for another ${id === 'hubspot' ? 'portal' : 'org'}</summary>
${mappingForm(csrf, id, addFailed?.account ?? '', addFailed?.text ?? JSON.stringify(await m.get('__default__').catch(() => ({})), null, 2), addFailed?.error ?? null, true)}
</details></section>`;
      }),
    );
    return shell({
      title: 'Field mappings',
      active: '/config',
      csrf,
      sandbox: ctx.sandbox,
      body: html`<p><a href="/config">← Configuration</a></p><h1>Field mappings</h1>
<p class="lead">Which CRM properties fill each segment field, per HubSpot portal or Salesforce org.</p>
${message}
${ids.length ? sections : empty('No CRM connector is configured.', installHint(ctx, null))}`,
    });
  };

  app.get('/config/mappings', auth.requirePage, async (c) => {
    const q = c.req.query();
    const msg = q.saved ? notice('ok', q.rolledBack ? `Rolled back the mapping for ${q.saved}: version ${q.rolledBack} is in force again, saved as a new version.` : `Saved the mapping for ${q.saved}.`) : '';
    return c.html(await mappingsPage(c.get('session').csrf, msg));
  });

  app.post('/config/mappings/rollback', auth.requireForm, async (c) => {
    const form = await c.req.parseBody();
    const csrf = c.get('session').csrf;
    const crm = typeof form.crm === 'string' ? form.crm : '';
    const account = typeof form.account === 'string' ? form.account.trim() : '';
    const version = Number(form.version);
    const m = ctx.mappings[crm];
    if (!m) return c.html(await mappingsPage(csrf, notice('bad', `No connector "${crm}".`)), 404);
    if (!/^[\w.-]{1,100}$/.test(account) || !Number.isInteger(version) || version < 0) return c.html(await mappingsPage(csrf, notice('bad', 'Pick a version to roll back to from the list under the mapping.')), 400);
    try {
      await m.rollback(account, version, 'console');
    } catch (err) {
      if (err instanceof AppError) return c.html(await mappingsPage(csrf, notice('bad', html`The mapping for ${crm} ${account} was not rolled back: ${err.message}`)), err.code === 'not_found' ? 404 : 422);
      throw err;
    }
    ctx.logger.info('console: mapping rolled back', { crm, account, to: version });
    return c.redirect(`/config/mappings?saved=${encodeURIComponent(`${crm} ${account}`)}&rolledBack=${version}`, 303);
  });

  app.post('/config/mappings', auth.requireForm, async (c) => {
    const form = await c.req.parseBody();
    const csrf = c.get('session').csrf;
    const crm = typeof form.crm === 'string' ? form.crm : '';
    const account = typeof form.account === 'string' ? form.account.trim() : '';
    const text = typeof form.mapping === 'string' ? form.mapping : '';
    const m = ctx.mappings[crm];
    if (!m) return c.html(await mappingsPage(csrf, notice('bad', `No connector "${crm}".`)), 404);
    const fail = async (error: string, status: 400 | 422) => c.html(await mappingsPage(csrf, notice('bad', html`The mapping for ${crm} ${account || '(no account)'} was not saved: ${error}`), { crm, account, text, error }), status);
    if (!/^[\w.-]{1,100}$/.test(account)) return fail('give the account id (HubSpot portal id or Salesforce org id).', 400);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return fail(`not valid JSON (${err instanceof Error ? err.message : String(err)}).`, 400);
    }
    try {
      const note = typeof form.note === 'string' && form.note.trim() ? form.note.trim().slice(0, 500) : 'saved in the console';
      await m.put(account, value, { author: 'console', note });
    } catch (err) {
      if (err instanceof AppError) return fail(err.message, 422);
      throw err;
    }
    ctx.logger.info('console: mapping saved', { crm, account });
    return c.redirect(`/config/mappings?saved=${encodeURIComponent(`${crm} ${account}`)}`, 303);
  });
}

function mappingForm(csrf: string, crm: string, account: string, text: string, error: string | null, isNew = false): Html {
  const id = `map-${crm}-${isNew ? 'new' : account.replace(/[^\w-]/g, '_')}`;
  return html`<form method="post" action="/config/mappings" class="card">
${csrfField(csrf)}<input type="hidden" name="crm" value="${crm}">
${isNew
  ? html`<div class="field"><label for="${id}-account">${crm === 'hubspot' ? 'Portal id' : 'Org id'}</label><input type="text" id="${id}-account" name="account" value="${account}" required></div>`
  : html`<h3>${crm === 'hubspot' ? 'Portal' : 'Org'} ${account}</h3><input type="hidden" name="account" value="${account}">`}
${error ? html`<div class="notice bad" id="${id}-err">${error}</div>` : ''}
<div class="field"><label for="${id}">Mapping (JSON)</label><textarea id="${id}" name="mapping" rows="${Math.min(24, Math.max(6, text.split('\n').length + 1))}" spellcheck="false"${error ? raw(` aria-invalid="true" aria-describedby="${id}-err"`) : ''}>${text}</textarea></div>
<div class="field"><label for="${id}-note">Note for this version</label><input type="text" id="${id}-note" name="note" maxlength="500" size="60" placeholder="what changed and why"></div>
<button type="submit">Save mapping</button>
</form>`;
}

/** An account's saved mapping versions (newest first, the first is in force), each but the current one restorable. */
function mappingVersions(csrf: string, crm: string, account: string, versions: MappingVersion[]): Html {
  if (!versions.length) return html`<p class="muted">No changes saved yet: the mapping above is the default.</p>`;
  const id = `map-${crm}-${account.replace(/[^\w-]/g, '_')}-versions`;
  return html`<details><summary>Versions of this mapping (${versions.length})</summary>
${tableWrap(`Mapping versions of ${crm} ${account}`, html`<table id="${id}"><thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th><th scope="col">Note</th><th scope="col">Actions</th></tr></thead><tbody>
${versions.map((v, i) => html`<tr><th scope="row">${v.version}${i === 0 ? html` <span class="badge ok">in force</span>` : ''}</th><td>${time(v.savedAt)}</td><td>${v.author}</td><td>${v.note || '–'}</td>
<td>${i === 0 ? '–' : html`<form class="inline" method="post" action="/config/mappings/rollback" data-confirm="Make version ${v.version} of this mapping the one in force? It is saved as a new version; nothing is lost.">${csrfField(csrf)}<input type="hidden" name="crm" value="${crm}"><input type="hidden" name="account" value="${account}"><input type="hidden" name="version" value="${v.version}"><button type="submit" class="secondary">Roll back to version ${v.version}</button></form>`}</td></tr>`)}
</tbody></table>`)}
</details>`;
}

function installHint(ctx: ConsoleContext, crm: string | null): Html {
  const hs = ctx.installLinks.hubspot;
  const sf = ctx.installLinks.salesforce;
  if (crm === 'hubspot' && hs) return html`<a href="${hs}">Install the app in a HubSpot portal</a>; the portal then appears here with the default mapping.`;
  if (crm === 'salesforce' && sf) return html`<a href="${sf}">Connect a Salesforce org</a>; the org then appears here with the default mapping.`;
  if (!crm && (hs || sf)) return html`${hs ? html`<a href="${hs}">Connect HubSpot</a>` : ''}${hs && sf ? ' or ' : ''}${sf ? html`<a href="${sf}">connect Salesforce</a>` : ''} to start.`;
  return html`Connect the CRM first (see the README).`;
}
