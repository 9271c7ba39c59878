// The customer intake form in Telegram, as a pure state machine: who are you (email, or the phone shared with
// Telegram's contact button), which product, which category, what is wrong, confirm. Every answer is validated with
// a clear re-ask; every prompt offers back and cancel; a half-finished form can be continued until it expires.
// The Telegram bot only renders `reply` and feeds user actions back in.

export const FORM_LANGUAGES = ['en', 'de'] as const;
export type FormLanguage = (typeof FORM_LANGUAGES)[number];

export type FormStep = 'identify' | 'product' | 'category' | 'description' | 'confirm';

export type FormAnswers = {
  identifier: { kind: 'email' | 'phone'; value: string } | null;
  product: string | null;
  category: string | null;
  description: string | null;
};

export type FormState = { step: FormStep; lang: FormLanguage; answers: FormAnswers; startedAt: number; updatedAt: number };

export type FormInput =
  | { kind: 'text'; text: string }
  | { kind: 'contact'; phone: string; ownContact: boolean }
  | { kind: 'button'; data: string };

export type Button = { label: string; data: string };
export type FormReply = { text: string; buttons: Button[][]; requestContact: boolean };

export type FormOptions = {
  products: string[];
  categories: string[];
  maxDescription: number;
  /** A form untouched for this long starts over. */
  expiresAfterMs: number;
};

export const DEFAULT_FORM_OPTIONS: FormOptions = { products: ['CRM', 'API', 'Billing suite', 'Mobile app'], categories: ['billing', 'technical', 'account'], maxDescription: 2000, expiresAfterMs: 24 * 3600_000 };

export type FormResult =
  | { kind: 'continue'; state: FormState; reply: FormReply }
  | { kind: 'cancelled'; reply: FormReply }
  | { kind: 'complete'; answers: Required<{ [K in keyof FormAnswers]: NonNullable<FormAnswers[K]> }>; lang: FormLanguage; reply: FormReply };

const T = {
  en: {
    welcome: 'Hi! Let’s open a support ticket. This takes four short questions.',
    identify: 'What is your email address? Or tap “Share my phone number”.',
    sharePhone: '📱 Share my phone number',
    badEmail: 'That does not look like an email address (like name@example.com). Please try again, or share your phone number.',
    notOwnContact: 'Please share your own contact with the button, not someone else’s.',
    product: 'Which product is it about?',
    badProduct: 'Please pick one of the products with the buttons.',
    category: 'What kind of problem is it?',
    badCategory: 'Please pick a category with the buttons.',
    description: 'Please describe the problem in a few sentences.',
    tooShort: 'Please write a little more (at least 10 characters), so the agent can help right away.',
    tooLong: (n: number) => `That is too long: please keep it under ${n} characters.`,
    confirm: (a: FormAnswers) => `Please check:\n• Contact: ${a.identifier?.value}\n• Product: ${a.product}\n• Category: ${a.category}\n• Problem: ${a.description}`,
    send: '✅ Send',
    back: '⬅️ Back',
    cancel: '✖️ Cancel',
    cancelled: 'Cancelled. Write to me any time to start again.',
    sent: 'Thank you! Your ticket is open; an agent will answer here.',
    useButtons: 'Please use the buttons: Send, Back or Cancel.',
    expired: 'Your earlier form expired, so let’s start again.',
    categories: { billing: 'Billing', technical: 'Technical', account: 'Account' } as Record<string, string>,
  },
  de: {
    welcome: 'Hallo! Wir eröffnen ein Support-Ticket. Dafür brauchen wir vier kurze Antworten.',
    identify: 'Wie lautet Ihre E-Mail-Adresse? Oder tippen Sie auf „Telefonnummer teilen“.',
    sharePhone: '📱 Telefonnummer teilen',
    badEmail: 'Das sieht nicht wie eine E-Mail-Adresse aus (z. B. name@beispiel.de). Bitte noch einmal, oder teilen Sie Ihre Telefonnummer.',
    notOwnContact: 'Bitte teilen Sie mit dem Knopf Ihren eigenen Kontakt, nicht den einer anderen Person.',
    product: 'Um welches Produkt geht es?',
    badProduct: 'Bitte wählen Sie ein Produkt über die Knöpfe.',
    category: 'Welche Art von Problem ist es?',
    badCategory: 'Bitte wählen Sie eine Kategorie über die Knöpfe.',
    description: 'Bitte beschreiben Sie das Problem in ein paar Sätzen.',
    tooShort: 'Bitte schreiben Sie etwas mehr (mindestens 10 Zeichen), damit wir sofort helfen können.',
    tooLong: (n: number) => `Das ist zu lang: bitte unter ${n} Zeichen bleiben.`,
    confirm: (a: FormAnswers) => `Bitte prüfen:\n• Kontakt: ${a.identifier?.value}\n• Produkt: ${a.product}\n• Kategorie: ${a.category}\n• Problem: ${a.description}`,
    send: '✅ Senden',
    back: '⬅️ Zurück',
    cancel: '✖️ Abbrechen',
    cancelled: 'Abgebrochen. Schreiben Sie mir jederzeit, um neu zu beginnen.',
    sent: 'Danke! Ihr Ticket ist eröffnet; ein Mitarbeiter antwortet hier.',
    useButtons: 'Bitte nutzen Sie die Knöpfe: Senden, Zurück oder Abbrechen.',
    expired: 'Ihr früheres Formular ist abgelaufen, wir beginnen neu.',
    categories: { billing: 'Abrechnung', technical: 'Technik', account: 'Konto' } as Record<string, string>,
  },
};

/** Telegram's language_code ("de", "de-AT", "en-GB") to a shipped translation, English otherwise. */
export function formLanguage(code: string | null | undefined): FormLanguage {
  const base = (code ?? '').toLowerCase().split(/[-_]/)[0];
  return (FORM_LANGUAGES as readonly string[]).includes(base ?? '') ? (base as FormLanguage) : 'en';
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,253}\.[a-z]{2,63}$/i;
const ORDER: FormStep[] = ['identify', 'product', 'category', 'description', 'confirm'];

function nav(lang: FormLanguage): Button[] {
  return [
    { label: T[lang].back, data: 'nav:back' },
    { label: T[lang].cancel, data: 'nav:cancel' },
  ];
}

function prompt(s: FormState, o: FormOptions, prefix?: string): FormReply {
  const t = T[s.lang];
  const withPrefix = (text: string) => (prefix ? `${prefix}\n\n${text}` : text);
  switch (s.step) {
    case 'identify':
      return { text: withPrefix(t.identify), buttons: [[{ label: t.cancel, data: 'nav:cancel' }]], requestContact: true };
    case 'product':
      return { text: withPrefix(t.product), buttons: [...chunk(o.products.map((p, i) => ({ label: p, data: `product:${i}` })), 2), nav(s.lang)], requestContact: false };
    case 'category':
      return { text: withPrefix(t.category), buttons: [...chunk(o.categories.map((c, i) => ({ label: t.categories[c] ?? c, data: `category:${i}` })), 3), nav(s.lang)], requestContact: false };
    case 'description':
      return { text: withPrefix(t.description), buttons: [nav(s.lang)], requestContact: false };
    case 'confirm':
      return { text: withPrefix(t.confirm(s.answers)), buttons: [[{ label: t.send, data: 'confirm:send' }], nav(s.lang)], requestContact: false };
  }
}

function chunk<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export function startForm(lang: FormLanguage, now: number, o: FormOptions = DEFAULT_FORM_OPTIONS, known?: FormAnswers['identifier']): FormResult {
  const state: FormState = { step: known ? 'product' : 'identify', lang, answers: { identifier: known ?? null, product: null, category: null, description: null }, startedAt: now, updatedAt: now };
  return { kind: 'continue', state, reply: prompt(state, o, T[lang].welcome) };
}

/** Advances the form by one user action. Invalid answers re-ask the same step with the reason. */
export function stepForm(prev: FormState | null, input: FormInput, now: number, lang: FormLanguage, o: FormOptions = DEFAULT_FORM_OPTIONS, known?: FormAnswers['identifier']): FormResult {
  if (!prev) return startForm(lang, now, o, known);
  if (now - prev.updatedAt > o.expiresAfterMs) {
    const r = startForm(prev.lang, now, o, known);
    return { ...r, reply: prompt((r as { state: FormState }).state, o, T[prev.lang].expired) };
  }
  const s: FormState = structuredClone(prev);
  s.updatedAt = now;
  const t = T[s.lang];
  const again = (why: string): FormResult => ({ kind: 'continue', state: s, reply: prompt(s, o, why) });
  const advance = (): FormResult => {
    s.step = ORDER[ORDER.indexOf(s.step) + 1]!;
    return { kind: 'continue', state: s, reply: prompt(s, o) };
  };

  if (input.kind === 'button' && input.data === 'nav:cancel') return { kind: 'cancelled', reply: { text: t.cancelled, buttons: [], requestContact: false } };
  if (input.kind === 'button' && input.data === 'nav:back') {
    const i = ORDER.indexOf(s.step);
    const floor = known ? 1 : 0;
    s.step = ORDER[Math.max(floor, i - 1)]!;
    return { kind: 'continue', state: s, reply: prompt(s, o) };
  }
  if (input.kind === 'text' && /^\/(cancel|stop)\b/i.test(input.text.trim())) return { kind: 'cancelled', reply: { text: t.cancelled, buttons: [], requestContact: false } };

  switch (s.step) {
    case 'identify': {
      if (input.kind === 'contact') {
        if (!input.ownContact) return again(t.notOwnContact);
        s.answers.identifier = { kind: 'phone', value: normalisePhone(input.phone) };
        return advance();
      }
      const text = input.kind === 'text' ? input.text.trim() : '';
      if (!EMAIL.test(text)) return again(t.badEmail);
      s.answers.identifier = { kind: 'email', value: text.toLowerCase() };
      return advance();
    }
    case 'product': {
      const idx = input.kind === 'button' && input.data.startsWith('product:') ? Number(input.data.slice(8)) : -1;
      const byText = input.kind === 'text' ? o.products.findIndex((p) => p.toLowerCase() === input.text.trim().toLowerCase()) : -1;
      const product = o.products[idx >= 0 ? idx : byText];
      if (!product) return again(t.badProduct);
      s.answers.product = product;
      return advance();
    }
    case 'category': {
      const idx = input.kind === 'button' && input.data.startsWith('category:') ? Number(input.data.slice(9)) : -1;
      const byText = input.kind === 'text' ? o.categories.findIndex((c) => c === input.text.trim().toLowerCase() || (t.categories[c] ?? '').toLowerCase() === input.text.trim().toLowerCase()) : -1;
      const category = o.categories[idx >= 0 ? idx : byText];
      if (!category) return again(t.badCategory);
      s.answers.category = category;
      return advance();
    }
    case 'description': {
      const text = input.kind === 'text' ? input.text.trim() : '';
      if (text.length < 10) return again(t.tooShort);
      if (text.length > o.maxDescription) return again(t.tooLong(o.maxDescription));
      s.answers.description = text;
      return advance();
    }
    case 'confirm': {
      if (input.kind === 'button' && input.data === 'confirm:send') {
        const a = s.answers;
        return { kind: 'complete', answers: { identifier: a.identifier!, product: a.product!, category: a.category!, description: a.description! }, lang: s.lang, reply: { text: t.sent, buttons: [], requestContact: false } };
      }
      return again(t.useButtons);
    }
  }
}

/** E.164-ish: keep digits and a leading plus (Telegram shares numbers without the plus). */
export function normalisePhone(phone: string): string {
  const digits = phone.replace(/[^\d]/g, '');
  return `+${digits}`;
}
