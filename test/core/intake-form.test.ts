import { describe, expect, it } from 'vitest';
import { formLanguage, startForm, stepForm, type FormInput, type FormResult, type FormState } from '../../core/intake-form.ts';

const NOW = 1_000_000;
function run(inputs: FormInput[], lang: 'en' | 'de' = 'en'): FormResult[] {
  let state: FormState | null = null;
  const out: FormResult[] = [];
  for (const i of inputs) {
    const r = stepForm(state, i, NOW, lang);
    out.push(r);
    state = r.kind === 'continue' ? r.state : null;
  }
  return out;
}
const text = (t: string): FormInput => ({ kind: 'text', text: t });
const button = (d: string): FormInput => ({ kind: 'button', data: d });

describe('intake form', () => {
  it.each([
    ['en', 'Please check', 'Thank you'],
    ['de', 'Bitte prüfen', 'Danke'],
  ] as const)('completes in %s', (lang, confirm, thanks) => {
    const r = run([text('/start'), text('Pat@Example.com'), button('product:1'), button('category:1'), text('The API returns 500 on every call since today.'), button('confirm:send')], lang);
    expect(r[0]!.reply.requestContact).toBe(true);
    expect(r[4]!.reply.text).toContain(confirm);
    const last = r.at(-1)!;
    expect(last.kind).toBe('complete');
    if (last.kind === 'complete') {
      expect(last.answers).toEqual({ identifier: { kind: 'email', value: 'pat@example.com' }, product: 'API', category: 'technical', description: 'The API returns 500 on every call since today.' });
      expect(last.reply.text).toContain(thanks);
    }
  });

  it('accepts the shared phone number, but only the customer’s own', () => {
    const r = run([text('hi'), { kind: 'contact', phone: '49 151 1234', ownContact: false }, { kind: 'contact', phone: '49 151 1234', ownContact: true }]);
    expect(r[1]!.reply.text).toMatch(/your own contact/);
    expect(r[2]!.kind === 'continue' && r[2]!.state.answers.identifier).toEqual({ kind: 'phone', value: '+491511234' });
  });

  it.each([
    ['bad email', [text('hi'), text('not-an-email')], /does not look like an email/],
    ['unknown product', [text('hi'), text('a@b.co'), text('Toaster')], /pick one of the products/],
    ['unknown category', [text('hi'), text('a@b.co'), button('product:0'), button('category:99')], /pick a category/],
    ['too short', [text('hi'), text('a@b.co'), button('product:0'), button('category:0'), text('help')], /at least 10 characters/],
    ['too long', [text('hi'), text('a@b.co'), button('product:0'), button('category:0'), text('x'.repeat(2001))], /under 2000 characters/],
    ['text at confirm', [text('hi'), text('a@b.co'), button('product:0'), button('category:0'), text('It is broken badly'), text('yes')], /use the buttons/],
  ])('re-asks with the reason: %s', (_name, inputs, why) => {
    const last = run(inputs as FormInput[]).at(-1)!;
    expect(last.kind).toBe('continue');
    expect(last.reply.text).toMatch(why);
  });

  it('back returns to the previous question and cancel ends the form', () => {
    const r = run([text('hi'), text('a@b.co'), button('product:0'), button('nav:back')]);
    expect(r.at(-1)!.kind === 'continue' && r.at(-1)!.kind === 'continue' ? (r.at(-1) as { state: FormState }).state.step : null).toBe('product');
    expect(run([text('hi'), text('a@b.co'), button('nav:cancel')]).at(-1)!.kind).toBe('cancelled');
  });

  it('a returning customer is not asked who they are; an expired form starts over', () => {
    const known = { kind: 'email' as const, value: 'pat@example.com' };
    const s = startForm('en', NOW, undefined, known);
    expect(s.kind === 'continue' && s.state.step).toBe('product');
    if (s.kind !== 'continue') throw new Error();
    const later = stepForm(s.state, button('product:0'), NOW + 25 * 3600_000, 'en', undefined, known);
    expect(later.reply.text).toMatch(/expired/);
    expect(later.kind === 'continue' && later.state.step).toBe('product');
  });

  it('picks the customer’s language when shipped', () => {
    expect(formLanguage('de-AT')).toBe('de');
    expect(formLanguage('fr')).toBe('en');
    expect(formLanguage(undefined)).toBe('en');
  });
});
