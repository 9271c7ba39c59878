// The XML reader behind the Salesforce webhook: what it reads, and that it refuses every document that is not
// well-formed (checked against fast-xml-parser's validator on the same inputs), so a malformed or hostile body is
// answered with a SOAP fault and nothing is processed.
import fc from 'fast-check';
import { XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { buildOutboundMessage, parseOutboundMessage } from '../../../connectors/salesforce/outbound-message.ts';
import { to18 } from '../../../connectors/salesforce/ids.ts';
import { readXml, XmlError } from '../../../connectors/salesforce/strict-xml.ts';

describe('strict XML reader', () => {
  it('reads elements, namespaces, attributes, text, CDATA and references; skips comments and the declaration', () => {
    const doc = readXml(
      '\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<!-- hello -->\n<s:E xmlns:s="urn:s" xmlns="urn:d" xmlns:x="urn:x">' +
        '<B x:nil="true" plain=\'1 &amp; 2\'/><C>a &lt;b&gt; &#233;&#x1F600; <![CDATA[<raw> & ]]><!-- c --><?pi data?>z</C>' +
        '<D xmlns="urn:other"><F/></D></s:E>\n',
    );
    expect([doc.local, doc.ns, doc.name]).toEqual(['E', 'urn:s', 's:E']);
    const [b, c, d] = doc.children;
    expect(b!.ns).toBe('urn:d');
    expect(b!.attr('urn:x', 'nil')).toBe('true');
    expect(b!.attr('urn:d', 'plain')).toBeUndefined(); // an attribute without a prefix has no namespace
    expect(b!.attrs.plain).toBe('1 & 2');
    expect(c!.text).toBe('a <b> é😀 <raw> & z');
    expect(d!.children[0]!.ns).toBe('urn:other');
  });

  const malformed: [string, string][] = [
    ['unclosed tags', '<a><b>1</b>'],
    ['a mismatched closing tag', '<a><b>1</c></a>'],
    ['crossed tags', '<a><b>1</a></b>'],
    ['text before the root', 'text<a/>'],
    ['text after the root', '<a></a>junk'],
    ['an unquoted attribute', '<a><b x=1>2</b></a>'],
    ['a repeated attribute', '<a x="1" x="2"/>'],
    ['attributes without space between', '<a x="1"y="2"/>'],
    ['a bare ampersand', '<a>fish & chips</a>'],
    ['an unterminated comment', '<a><!-- c </a>'],
    ['a stray closing tag', '</a>'],
    ['a tag without a name', '<a>< /></a>'],
    ['JSON', '{"notifications":[]}'],
  ];
  it.each(malformed)('refuses %s (as fast-xml-parser\'s validator does)', (_name, xml) => {
    expect(() => readXml(xml)).toThrow(XmlError);
    expect(XMLValidator.validate(xml)).not.toBe(true);
  });

  // Not well-formed XML either, though the validator lets these through.
  it.each([
    ['a second root', '<a/><b/>'],
    ['an unknown entity', '<a>&unknown;</a>'],
    ['"--" inside a comment', '<a><!-- a -- b --></a>'],
    ['a "<" in an attribute', '<a x="<"/>'],
    ['an undeclared namespace prefix', '<s:a/>'],
    ['a reference to a character XML forbids', '<a>&#0;</a>'],
    ['elements nested deeper than 20', '<a>'.repeat(21) + '</a>'.repeat(21)],
    ['a DOCTYPE', '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>'],
    ['an XML declaration that is not first', '<a><?xml version="1.0"?></a>'],
  ])('refuses %s', (_name, xml) => {
    expect(() => readXml(xml)).toThrow(XmlError);
  });

  it('normalises line ends as XML requires, and keeps a carriage return sent as a reference', () => {
    expect(readXml('<a>one\r\ntwo\rthree&#13;</a>').text).toBe('one\ntwo\nthree\r');
  });

  it('names the line of the problem', () => {
    expect(() => readXml('<a>\n<b>\n</c></a>')).toThrow(/does not match <b> \(line 3\)/);
  });

  it('reads any field text Salesforce can send back exactly', () => {
    // Characters XML can carry (no C0 controls but tab and newline; a carriage return is normalised by XML itself).
    const xmlChar = fc.integer({ min: 0x20, max: 0x10ffff }).filter((c) => (c < 0xd800 || c > 0xdfff) && c !== 0xfffe && c !== 0xffff).map((c) => String.fromCodePoint(c));
    const text = fc.array(fc.oneof(xmlChar, fc.constantFrom('\t', '\n', '&', '<', '>', '"', "'", ']]>', '--')), { maxLength: 40 }).map((a) => a.join(''));
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('Subject', 'Description', 'Priority', 'Origin', 'Tier__c'), fc.option(text)), (fields) => {
        const id = to18('500TL0000000001');
        const xml = buildOutboundMessage({ orgId: to18('00D5g000004Sbx1'), actionId: to18('04kTL0000000001'), instanceUrl: 'https://x', notifications: [{ id: to18('04lTL0000000001'), type: 'Case', fields: { Id: id, ...fields } }] });
        const r = parseOutboundMessage(xml);
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.message.notifications[0]!.fields).toEqual({ Id: id, ...fields });
      }),
      { numRuns: 300 },
    );
  });
});
