// Simulated customer chat (sandbox mode): a person plays a customer writing to the team's Telegram bot, fills in the
// intake form (buttons, the contact button, text), sends a photo or a file, and watches the ticket open, route into a
// topic of the sandbox forum, and the agent's answers come back. Every action goes through the Telegram sandbox as a
// real private message or button press would, so the intake bot handles it exactly as it would in Telegram.
import type { CustomerView, PrivateChats } from '../../../connectors/telegram/sandbox/index.ts';
import type { Auth } from '../auth.ts';
import type { ConsoleContext, Routes } from '../context.ts';
import { csrfField, empty, html, notice, qs, shell, time } from '../ui.ts';

type WithChats = { chats?: PrivateChats; botUserId?: string };

export function mountCustomerChat(app: Routes, ctx: ConsoleContext, auth: Auth): void {
  const chatsOf = () => {
    const f = ctx.sandboxForum as (typeof ctx.sandboxForum & WithChats) | undefined;
    return f?.chats && f.botUserId ? { chats: f.chats, bot: f.botUserId } : null;
  };

  app.get('/forum/customer', auth.requirePage, async (c) => {
    const csrf = c.get('session').csrf;
    const s = chatsOf();
    const page = (body: ReturnType<typeof html>) => c.html(shell({ title: 'Customer chat', active: '/forum', csrf, sandbox: ctx.sandbox, body }));
    if (!s) return page(html`<h1>Customer chat</h1>${empty('No simulated Telegram here.', 'The customer chat exists when Tierline runs with the Telegram sandbox.')}`);
    const q = c.req.query();
    const customers = s.chats.customers();
    const user = customers.find((x) => x.id === q.user) ?? customers[0];
    if (!user) return page(html`<h1>Customer chat</h1>${empty('The sandbox has no customers.', 'Restart with the sandbox seed.')}`);
    const chat = s.chats.chat(user.id, s.bot);
    const hidden = html`${csrfField(csrf)}<input type="hidden" name="user" value="${user.id}">`;
    const keyboard = [...chat].reverse().find((m) => m.fromBot && (m.keyboard || m.buttons.length));
    const line = (m: CustomerView) =>
      html`<li><span class="who">${m.fromBot ? 'Bot' : user.name}</span> <span class="muted">${time(m.at, true)}${m.edited ? ' · edited' : ''}${m.media ? ` · ${m.media.kind}${m.media.name ? ` ${m.media.name}` : ''}` : ''}</span><pre>${m.text || (m.media ? `[${m.media.kind}]` : '')}</pre>
${m.fromBot && m.buttons.length ? html`<form method="post" action="/forum/customer/press" class="actions">${hidden}<input type="hidden" name="message" value="${m.id}">${m.buttons.flat().map((b) => html`<button type="submit" name="data" value="${b.data}" class="secondary">${b.label}</button>`)}</form>` : ''}</li>`;
    const body = html`<p><a href="/forum">← Sandbox forum</a></p>
<h1>Customer chat</h1>
<p class="lead">Write to the team's bot as a customer. The bot asks who you are (email, or the contact button), the product, the kind of problem and a description, opens the ticket in the CRM and routes it; afterwards what you write here reaches the agent's topic and their answers come back. Reload to see the bot's answers.</p>
${q.done ? notice('ok', q.done) : ''}
<form method="get" action="/forum/customer" class="actions"><label for="cust">Customer</label>
<select id="cust" name="user">${customers.map((x) => html`<option value="${x.id}"${x.id === user.id ? ' selected' : ''}>${x.name} (Telegram language ${x.langCode})</option>`)}</select>
<button type="submit" class="secondary">Switch</button></form>
<section aria-labelledby="chat-h"><h2 id="chat-h">Chat with the bot</h2>
${chat.length ? html`<ol class="chat">${chat.map(line)}</ol>` : html`<p class="muted">No messages yet: write anything (or /start) to begin.</p>`}
</section>
<section aria-labelledby="send-h"><h2 id="send-h">Write as ${user.name}</h2>
<form method="post" action="/forum/customer/send" class="card">${hidden}
<div class="field"><label for="cust-text">Message</label><textarea id="cust-text" name="text" rows="3">${chat.length ? '' : '/start'}</textarea></div>
<div class="actions"><button type="submit">Send</button>
<button type="submit" name="media" value="photo" class="secondary">Send a photo (with the text as caption)</button>
<button type="submit" name="media" value="document" class="secondary">Send a file</button>
${keyboard?.keyboard?.flat().some((b) => b.requestPhone) ? html`<button type="submit" name="contact" value="1" class="secondary">📱 Share my phone number${user.phone ? ` (${user.phone})` : ''}</button>` : ''}</div>
</form></section>`;
    return page(body);
  });

  const field = (form: Record<string, unknown>, k: string) => (typeof form[k] === 'string' ? (form[k] as string) : '');
  const back = (user: string, done: string) => `/forum/customer${qs({ user, done })}`;

  app.post('/forum/customer/send', auth.requireForm, async (c) => {
    const s = chatsOf();
    if (!s) return c.redirect('/forum/customer', 303);
    const form = await c.req.parseBody();
    const user = field(form, 'user');
    const text = field(form, 'text').trim().slice(0, 4000);
    const media = field(form, 'media');
    const customer = s.chats.customers().find((x) => x.id === user);
    if (!customer) return c.redirect('/forum/customer', 303);
    if (field(form, 'contact') === '1') s.chats.send(user, s.bot, { contact: { phone: customer.phone ?? '+4930000000' } });
    else if (media === 'photo' || media === 'document') s.chats.send(user, s.bot, { text, media: media === 'photo' ? { kind: 'photo' } : { kind: 'document', name: 'screenshot.pdf', mime: 'application/pdf' } });
    else if (text) s.chats.send(user, s.bot, { text });
    else return c.redirect(back(user, 'Write a message first.'), 303);
    return c.redirect(back(user, 'Sent. The bot answers within a moment; reload to see it.'), 303);
  });

  app.post('/forum/customer/press', auth.requireForm, async (c) => {
    const s = chatsOf();
    if (!s) return c.redirect('/forum/customer', 303);
    const form = await c.req.parseBody();
    const user = field(form, 'user');
    try {
      s.chats.press(user, Number(field(form, 'message')), field(form, 'data'));
    } catch {
      return c.redirect(back(user, 'That button is gone; use the latest question.'), 303);
    }
    return c.redirect(back(user, 'Pressed.'), 303);
  });
}
