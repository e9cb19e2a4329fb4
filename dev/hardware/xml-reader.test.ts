import { child, childrenNamed, parseXml, textAt, type XmlElement } from './xml-reader.js';

function root(xml: string): XmlElement {
  const r = parseXml(xml);
  if (!r.ok) throw new Error(`expected a document, got: ${r.error} at ${r.offset}`);
  return r.root;
}

describe('parseXml', () => {
  it('reads elements, attributes, text, self-closing elements and comments', () => {
    const doc = root(`<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
<!-- a comment before the root -->
<nvidia_smi_log>
\t<gpu id="00000000:18:00.0" extra='x'>
\t\t<product_name>NVIDIA H100 80GB HBM3</product_name>
\t\t<!-- inside -->
\t\t<processes />
\t\t<mig_devices>
\t\t\tNone
\t\t</mig_devices>
\t</gpu>
</nvidia_smi_log>
`);
    expect(doc.name).toBe('nvidia_smi_log');
    const gpu = child(doc, 'gpu');
    expect(gpu?.attributes).toEqual({ id: '00000000:18:00.0', extra: 'x' });
    expect(textAt(doc, 'gpu/product_name')).toBe('NVIDIA H100 80GB HBM3');
    expect(child(gpu, 'processes')).toEqual({ name: 'processes', attributes: {}, children: [], text: '' });
    expect(textAt(gpu, 'mig_devices')).toBe('None');
    expect(textAt(gpu, 'absent/path')).toBeUndefined();
  });

  it.each([
    ['predefined entities', '<a>&lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;</a>', `<b> & "c" 'd'`],
    ['character references', '<a>&#65;&#x42;&#x1F600;</a>', 'AB😀'],
    ['CDATA', '<a><![CDATA[<not> & markup]]></a>', '<not> & markup'],
    ['a byte-order mark', '\ufeff<a>x</a>', 'x'],
    ['whitespace trimmed', '<a>\n\t 35 C \n</a>', '35 C'],
  ])('decodes %s', (_name, xml, text) => {
    expect(root(xml).text).toBe(text);
  });

  it('keeps repeated children in order', () => {
    const doc = root('<r><p><pid>1</pid></p><q/><p><pid>2</pid></p></r>');
    expect(childrenNamed(doc, 'p').map((p) => textAt(p, 'pid'))).toEqual(['1', '2']);
  });

  it.each([
    [
      'a DOCTYPE internal subset (entity declarations)',
      '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
      /internal subset/,
    ],
    ['an unknown entity', '<a>&e;</a>', /unknown entity/],
    ['a bare ampersand', '<a>R&D</a>', /bare "&"/],
    ['a mismatched closing tag', '<a><b></a></b>', /closes <b>/],
    ['an unclosed element', '<a><b>text', /not closed/],
    ['content after the root', '<a/><b/>', /after the root/],
    ['no root', '<?xml version="1.0"?>', /root element/],
    ['a repeated attribute', '<a x="1" x="2"/>', /repeated/],
    ['a malformed attribute', '<a x=1/>', /malformed attribute/],
    ['an unterminated comment', '<a><!-- </a>', /unterminated comment/],
    ['a character reference out of range', '<a>&#x110000;</a>', /out of range/],
  ])('refuses %s', (_name, xml, error) => {
    const r = parseXml(xml);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(error);
  });

  it('enforces its size, depth and element-count limits', () => {
    const limits = { maxChars: 1000, maxDepth: 3, maxElements: 5 };
    expect(parseXml('<a>'.padEnd(1001, ' '), limits)).toMatchObject({ ok: false, error: expect.stringMatching(/longer than 1000/) });
    expect(parseXml('<a><b><c><d/></c></b></a>', limits)).toMatchObject({ ok: false, error: expect.stringMatching(/deeper than 3/) });
    expect(parseXml('<a><b/><b/><b/><b/><b/></a>', limits)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/more than 5 elements/),
    });
    expect(parseXml('<a><b/><b/><b/><b/></a>', limits).ok).toBe(true);
  });

  it('reads deep nesting up to the default limit without recursion trouble', () => {
    const depth = 64;
    const xml = `${'<e>'.repeat(depth)}x${'</e>'.repeat(depth)}`;
    expect(parseXml(xml).ok).toBe(true);
    expect(parseXml(`<r>${xml}</r>`).ok).toBe(false);
  });
});
