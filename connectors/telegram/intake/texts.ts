// What the intake bot says besides the form's own prompts (core/intake-form.ts), in every shipped form language.
import type { FormLanguage } from '../../../core/intake-form.ts';

type Texts = {
  sharePhone: string;
  identified: (who: string) => string;
  opened: (ref: string) => string;
  openFailed: string;
  taken: (agent: string) => string;
  waiting: string;
  resolved: (days: number) => string;
  reopened: string;
  tooFast: string;
  capReached: (n: number) => string;
  staleButton: string;
  textPlease: string;
  notForwarded: string;
  newHint: string;
};

export const TEXTS: Record<FormLanguage, Texts> = {
  en: {
    sharePhone: '📱 Share my phone number',
    identified: (who) => `✓ Thanks — ${who}.`,
    opened: (ref) => `Your ticket ${ref} is open. Write here any time: an agent answers in this chat.`,
    openFailed: 'Sorry, we could not open your ticket just now. We keep trying; you do not need to do anything.',
    taken: (agent) => `👤 ${agent} has taken your ticket.`,
    waiting: 'Your ticket is in the queue; the next free agent takes it.',
    resolved: (days) => `✅ Your ticket is resolved. If something is still wrong, just write here within ${days} days and it reopens. Send /new for a new request.`,
    reopened: '🔄 Your ticket is open again; the agent sees your message.',
    tooFast: 'You are sending messages very fast. Please wait a minute; messages sent meanwhile do not reach the agent.',
    capReached: (n) => `You already have ${n} open tickets. Please continue in this chat, or wait until one is resolved.`,
    staleButton: 'That question was already answered.',
    textPlease: 'Please answer with text or the buttons (files can be sent once the ticket is open).',
    notForwarded: 'This message type cannot be passed on; please send text, a photo, a file or a voice message.',
    newHint: 'Send /new to open another ticket.',
  },
  de: {
    sharePhone: '📱 Telefonnummer teilen',
    identified: (who) => `✓ Danke — ${who}.`,
    opened: (ref) => `Ihr Ticket ${ref} ist eröffnet. Schreiben Sie jederzeit hier: ein Mitarbeiter antwortet in diesem Chat.`,
    openFailed: 'Leider konnten wir Ihr Ticket gerade nicht eröffnen. Wir versuchen es weiter; Sie müssen nichts tun.',
    taken: (agent) => `👤 ${agent} kümmert sich um Ihr Ticket.`,
    waiting: 'Ihr Ticket ist in der Warteschlange; der nächste freie Mitarbeiter übernimmt es.',
    resolved: (days) => `✅ Ihr Ticket ist gelöst. Falls noch etwas nicht stimmt, schreiben Sie innerhalb von ${days} Tagen hier, dann wird es wieder geöffnet. Mit /new starten Sie eine neue Anfrage.`,
    reopened: '🔄 Ihr Ticket ist wieder offen; der Mitarbeiter sieht Ihre Nachricht.',
    tooFast: 'Sie senden sehr schnell Nachrichten. Bitte warten Sie eine Minute; was Sie in der Zeit senden, wird nicht weitergegeben.',
    capReached: (n) => `Sie haben bereits ${n} offene Tickets. Bitte schreiben Sie in diesem Chat weiter oder warten Sie, bis eines gelöst ist.`,
    staleButton: 'Diese Frage ist schon beantwortet.',
    textPlease: 'Bitte antworten Sie mit Text oder den Knöpfen (Dateien können Sie senden, sobald das Ticket eröffnet ist).',
    notForwarded: 'Diese Art Nachricht kann nicht weitergegeben werden; bitte senden Sie Text, ein Foto, eine Datei oder eine Sprachnachricht.',
    newHint: 'Mit /new eröffnen Sie ein weiteres Ticket.',
  },
};
