// Sandbox forum (sandbox mode only): the simulated Telegram groups and their topics, where a person acts as an agent
// (reply, close the topic, go away or come back) and watches first response and resolution flow into the history
// and the sandbox CRM record. Every action goes through the Telegram sandbox like a real update would.
import type { SandboxForum, SandboxGroup } from '../../contracts.ts';
import type { Auth } from '../auth.ts';
import type { ConsoleContext, Routes } from '../context.ts';
import { csrfField, empty, html, int, notice, qs, raw, selectOptions, shell, tableWrap, ticketHref, time, type Html } from '../ui.ts';
import { mountCustomerChat } from './customer-chat.ts';

const TOPICS_SHOWN = 50;

export function mountForum(app: Routes, ctx: ConsoleContext, auth: Auth): void {
  mountCustomerChat(app, ctx, auth);
  const unavailable = (csrf: string) =>
    shell({
      title: 'Sandbox forum',
      active: '/forum',
      csrf,
      sandbox: ctx.sandbox,
      body: html`<h1>Sandbox forum</h1>${empty('Telegram is connected for real, so there is no simulated forum.', html`The sandbox forum exists when Tierline runs without Telegram credentials. Your agents answer in the real Telegram groups; their replies show up in the <a href="/history">history</a>.`)}`,
    });

  app.get('/forum', auth.requirePage, async (c) => {
    const csrf = c.get('session').csrf;
    const forum = ctx.sandboxForum;
    if (!forum) return c.html(unavailable(csrf));
    const q = c.req.query();
    const agents = forum.agents();
    const groups = forum.groups();
    const body = html`<h1>Sandbox forum</h1>
<p class="lead">Act as an agent: open a topic, reply (the first reply stops the SLA clock), close it (resolves the ticket), or go offline. Changes reach the history within a second or two.</p>
${(forum as { chats?: unknown }).chats ? html`<p><a href="/forum/customer">Customer chat</a>: write to the team's bot as a customer (intake form, then the conversation with the agent).</p>` : ''}
${q.done ? notice('ok', q.done) : ''}
<section aria-labelledby="agents-h"><h2 id="agents-h">Agents</h2>
${agents.length
  ? tableWrap('Sandbox agents', html`<table><thead><tr><th scope="col">Agent</th><th scope="col">Telegram user id</th><th scope="col">Presence</th><th scope="col">Action</th></tr></thead><tbody>
${agents.map((a) => html`<tr><th scope="row">${a.name}</th><td><code>${a.telegramUserId}</code></td><td><span class="badge ${a.online ? 'ok' : 'bad'}">${a.online ? 'online' : 'offline'}</span></td>
<td><form class="inline" method="post" action="/forum/presence">${csrfField(csrf)}<input type="hidden" name="user" value="${a.telegramUserId}"><input type="hidden" name="online" value="${a.online ? '0' : '1'}">
<button type="submit" class="secondary">${a.online ? `Go offline as ${a.name}` : `Come online as ${a.name}`}</button></form></td></tr>`)}
</tbody></table>`)
  : empty('The sandbox has no agents.', 'Agents come from the Telegram sandbox seed; restart with the sample configuration.')}
</section>
${groups.length
  ? groups.map((g) => groupSection(forum, g))
  : empty('No forum groups yet.', html`Add groups under <a href="/config#field-groups">Configuration</a>; the sandbox creates them as forum supergroups.`)}`;
    return c.html(shell({ title: 'Sandbox forum', active: '/forum', csrf, sandbox: ctx.sandbox, body }));
  });

  app.get('/forum/topic', auth.requirePage, async (c) => {
    const csrf = c.get('session').csrf;
    const forum = ctx.sandboxForum;
    if (!forum) return c.html(unavailable(csrf));
    const q = c.req.query();
    const group = forum.groups().find((g) => g.channelId === q.group);
    const topicId = Number(q.topic);
    const topic = group ? forum.topics(group.channelId).find((t) => t.topicId === topicId) : undefined;
    if (!group || !topic) {
      return c.html(shell({ title: 'Topic not found', active: '/forum', csrf, sandbox: ctx.sandbox, body: html`<h1>Topic not found</h1>${empty('That topic does not exist in the sandbox.', html`Pick one on the <a href="/forum">sandbox forum</a>.`)}` }), 404);
    }
    const messages = forum.messages(group.channelId, topic.topicId, 100);
    const ticket = (await ctx.store.findTicketByTopic(group.id, topic.topicId)) ?? (await ctx.store.findTicketByTopic(group.channelId, topic.topicId));
    const version = await ctx.store.getConfig();
    const assignee = ticket?.agentId ? version?.config.agents.find((a) => a.id === ticket.agentId) : undefined;
    const agents = forum.agents();
    const defaultAgent = assignee?.telegramUserId ?? agents[0]?.telegramUserId;
    const hidden = html`${csrfField(csrf)}<input type="hidden" name="group" value="${group.channelId}"><input type="hidden" name="topic" value="${topic.topicId}">`;
    const body = html`<p><a href="/forum">← Sandbox forum</a></p>
<h1>${topic.title}</h1>
<p class="lead">${group.title} · topic ${topic.topicId} · ${topic.closed ? html`<span class="badge bad">closed</span>` : html`<span class="badge ok">open</span>`}
${ticket ? html` · <a href="${ticketHref(ticket.key)}">Ticket history and timings</a> (status ${ticket.status}${ticket.firstResponseAt && ticket.enqueuedAt !== null ? `, first response after ${Math.round((ticket.firstResponseAt - ticket.enqueuedAt) / 1000)} s` : ''})` : ''}</p>
${q.done ? notice('ok', q.done) : ''}
<section aria-labelledby="msgs-h"><h2 id="msgs-h">Messages</h2>
${messages.length
  ? html`<ol class="chat">${messages.map((m) => html`<li${m.pinned ? raw(' class="pinned"') : ''}><span class="who">${m.fromName}</span> <span class="muted">${time(m.at, true)}${m.pinned ? ' · pinned' : ''}</span><pre>${m.text}</pre></li>`)}</ol>`
  : html`<p class="muted">No messages yet: the ticket card is posted right after the topic is created.</p>`}
</section>
<section aria-labelledby="act-h"><h2 id="act-h">Act as an agent</h2>
${agents.length
  ? html`<form method="post" action="/forum/reply" class="card">${hidden}
<div class="field"><label for="as-agent">Agent</label><select id="as-agent" name="user">${selectOptions(agents.map((a) => ({ value: a.telegramUserId, label: `${a.name}${a.telegramUserId === assignee?.telegramUserId ? ' (assigned)' : ''}` })), defaultAgent)}</select></div>
<div class="field"><label for="reply-text">Message</label><textarea id="reply-text" name="text" rows="3" required aria-describedby="reply-help">Hi, I am looking into this now.</textarea>
<p class="muted" id="reply-help">Commands work as in Telegram: /resolve, /reassign, /escalate, /away, /back.</p></div>
<div class="actions"><button type="submit">Send reply</button>
<button type="submit" name="text" value="/away" class="secondary">Go away (/away)</button>
<button type="submit" name="text" value="/back" class="secondary">Come back (/back)</button>
<button type="submit" name="text" value="/resolve" class="secondary">Resolve (/resolve)</button></div>
</form>
${topic.closed ? '' : html`<form method="post" action="/forum/close" class="actions" data-confirm="Close this topic? The ticket is resolved.">${hidden}<input type="hidden" name="user" value="${defaultAgent ?? ''}"><button type="submit" class="danger">Close the topic as ${assignee?.name ?? agents[0]?.name ?? 'an agent'}</button></form>`}`
  : empty('No agents in the sandbox.', 'Restart with the sample configuration.')}
</section>`;
    return c.html(shell({ title: topic.title, active: '/forum', csrf, sandbox: ctx.sandbox, body }));
  });

  const back = (group: string, topic: string, done: string) => `/forum/topic${qs({ group, topic, done })}`;
  const field = (form: Record<string, unknown>, k: string) => (typeof form[k] === 'string' ? (form[k] as string) : '');
  /** What is wrong with the group, topic and agent a form names (a stale page, a hand-made post), or null. */
  const problem = (forum: SandboxForum, want: { group?: string; topic?: string; user: string }): string | null => {
    if (!forum.agents().some((a) => a.telegramUserId === want.user)) return 'That agent is not in the sandbox: pick one of the agents listed on the sandbox forum.';
    if (want.group === undefined) return null;
    if (!forum.groups().some((g) => g.channelId === want.group)) return 'That group is not in the sandbox: open a topic from the sandbox forum and act from its page.';
    const topic = forum.topics(want.group).find((t) => String(t.topicId) === want.topic);
    if (!topic) return 'That topic does not exist in the group: open a topic from the sandbox forum and act from its page.';
    if (topic.closed) return 'That topic is closed: the ticket is resolved. Open an open topic from the sandbox forum.';
    return null;
  };
  const refuse = (csrf: string, why: string) =>
    shell({ title: 'Cannot do that', active: '/forum', csrf, sandbox: ctx.sandbox, body: html`<h1>Cannot do that</h1>${notice('bad', why)}<p><a href="/forum">Back to the sandbox forum</a></p>` });

  app.post('/forum/reply', auth.requireForm, async (c) => {
    const forum = ctx.sandboxForum;
    if (!forum) return c.redirect('/forum', 303);
    // A quick-command button sends its own "text" after the textarea's; the last value (the button's) wins.
    const form = await c.req.parseBody();
    const text = field(form, 'text').trim().slice(0, 4000);
    const group = field(form, 'group');
    const topic = field(form, 'topic');
    const user = field(form, 'user');
    const why = problem(forum, { group, topic, user });
    if (why) return c.html(refuse(c.get('session').csrf, why), 400);
    if (!text) return c.redirect(back(group, topic, 'Write a message first.'), 303);
    await forum.reply(group, Number(topic), user, text);
    ctx.logger.info('console: sandbox reply', { group, topic, user, command: text.startsWith('/') ? text.split(/\s/)[0] : null });
    return c.redirect(back(group, topic, text.startsWith('/') ? `Sent ${text.split(/\s/)[0]}.` : 'Reply sent. The first reply sets the first-response time in the history.'), 303);
  });

  app.post('/forum/close', auth.requireForm, async (c) => {
    const forum = ctx.sandboxForum;
    if (!forum) return c.redirect('/forum', 303);
    const form = await c.req.parseBody();
    const group = field(form, 'group');
    const topic = field(form, 'topic');
    const user = field(form, 'user');
    const why = problem(forum, { group, topic, user });
    if (why) return c.html(refuse(c.get('session').csrf, why), 400);
    await forum.closeTopic(group, Number(topic), user);
    ctx.logger.info('console: sandbox topic closed', { group, topic });
    return c.redirect(back(group, topic, 'Topic closed; the ticket is resolved.'), 303);
  });

  app.post('/forum/presence', auth.requireForm, async (c) => {
    const forum = ctx.sandboxForum;
    if (!forum) return c.redirect('/forum', 303);
    const form = await c.req.parseBody();
    const user = field(form, 'user');
    const online = field(form, 'online') === '1';
    const why = problem(forum, { user });
    if (why) return c.html(refuse(c.get('session').csrf, why), 400);
    await forum.setOnline(user, online);
    const name = forum.agents().find((a) => a.telegramUserId === user)?.name ?? user;
    return c.redirect(`/forum${qs({ done: `${name} is now ${online ? 'online' : 'offline'} (after the grace period an offline agent's unanswered tickets move).` })}`, 303);
  });
}

function groupSection(forum: SandboxForum, g: SandboxGroup): Html {
  const topics = [...forum.topics(g.channelId)].sort((a, b) => b.createdAt - a.createdAt);
  const shown = topics.slice(0, TOPICS_SHOWN);
  return html`<section aria-labelledby="g-${g.channelId}-h"><h2 id="g-${g.channelId}-h">${g.title}</h2>
${shown.length
  ? tableWrap(`Topics in ${g.title}`, html`<table><caption>${int(topics.length)} topics${topics.length > shown.length ? `, newest ${shown.length} shown` : ''}</caption><thead><tr><th scope="col">Topic</th><th scope="col">Created</th><th scope="col" class="num">Messages</th><th scope="col">State</th></tr></thead><tbody>
${shown.map((t) => html`<tr><td><a href="/forum/topic${qs({ group: g.channelId, topic: t.topicId })}">${t.title}</a></td><td>${time(t.createdAt, true)}</td><td class="num">${t.messageCount}</td><td>${t.closed ? html`<span class="badge bad">closed</span>` : html`<span class="badge ok">open</span>`}</td></tr>`)}
</tbody></table>`)
  : html`<p class="muted">No topics yet: each routed ticket opens one here.</p>`}
</section>`;
}
