/**
 * A small, bounded XML reader for nvidia-smi's `-q -x` output: elements, attributes, text,
 * comments, CDATA and the five predefined entities plus character references. It is not a
 * general XML parser: a DOCTYPE with an internal subset is refused (no entity expansion at all,
 * so no XXE or "billion laughs"), and input size, depth and element count are capped. The
 * project has no XML dependency, and this tree is simple enough not to need one.
 */

/** One element: its name, attributes, child elements and its own text (trimmed, children's excluded). */
export interface XmlElement {
  name: string;
  attributes: Readonly<Record<string, string>>;
  children: XmlElement[];
  text: string;
}

/** Caps on what one document may cost. */
export interface XmlLimits {
  maxChars: number;
  maxDepth: number;
  maxElements: number;
}

/** nvidia-smi -q -x for 8 GPUs is about 1 MB (mostly supported clocks); these leave ample room. */
export const DEFAULT_XML_LIMITS: Readonly<XmlLimits> = Object.freeze({ maxChars: 32 * 1024 * 1024, maxDepth: 64, maxElements: 2_000_000 });

/** The root element, or why the text is not a document this reader accepts (with the offset). */
export type XmlParseResult = { ok: true; root: XmlElement } | { ok: false; error: string; offset: number };

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
const SPACE = /\s*/y;
const ATTRIBUTE = /([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;
const ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
const MAX_CODE_POINT = 0x10ffff;

class XmlSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'XmlSyntaxError';
  }
}

/** Replaces entity and character references; an unknown entity is an error (nothing is expanded from a DTD). */
function decodeEntities(raw: string, offset: number): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&(#x[0-9A-Fa-f]+|#[0-9]+|[A-Za-z]+);|&/g, (whole: string, ref: string | undefined) => {
    if (ref === undefined) throw new XmlSyntaxError('a bare "&" (not an entity reference)', offset);
    if (ref.startsWith('#')) {
      const code = ref.startsWith('#x') ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!Number.isFinite(code) || code > MAX_CODE_POINT) throw new XmlSyntaxError(`character reference ${whole} out of range`, offset);
      return String.fromCodePoint(code);
    }
    const value = ENTITIES[ref];
    if (value === undefined) throw new XmlSyntaxError(`unknown entity &${ref.slice(0, 32)};`, offset);
    return value;
  });
}

class Reader {
  private pos = 0;
  private elements = 0;

  constructor(
    private readonly text: string,
    private readonly limits: XmlLimits,
  ) {}

  document(): XmlElement {
    this.prolog();
    if (!this.text.startsWith('<', this.pos)) throw new XmlSyntaxError('expected the root element', this.pos);
    const root = this.element(1);
    this.misc();
    if (this.pos < this.text.length) throw new XmlSyntaxError('content after the root element', this.pos);
    return root;
  }

  private skipSpace(): void {
    SPACE.lastIndex = this.pos;
    SPACE.exec(this.text);
    this.pos = SPACE.lastIndex;
  }

  /** Skips `<?...?>`, comments and whitespace; false when none was there. */
  private skipMisc(): boolean {
    this.skipSpace();
    if (this.text.startsWith('<?', this.pos)) return this.skipPast('?>', 'processing instruction');
    if (this.text.startsWith('<!--', this.pos)) return this.skipPast('-->', 'comment');
    return false;
  }

  private misc(): void {
    while (this.skipMisc()) {
      // each pass consumed one processing instruction or comment
    }
    this.skipSpace();
  }

  private skipPast(end: string, what: string): true {
    const at = this.text.indexOf(end, this.pos);
    if (at < 0) throw new XmlSyntaxError(`unterminated ${what}`, this.pos);
    this.pos = at + end.length;
    return true;
  }

  private prolog(): void {
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1;
    this.misc();
    if (this.text.startsWith('<!DOCTYPE', this.pos)) {
      const end = this.text.indexOf('>', this.pos);
      if (end < 0) throw new XmlSyntaxError('unterminated DOCTYPE', this.pos);
      if (this.text.slice(this.pos, end).includes('['))
        throw new XmlSyntaxError('a DOCTYPE internal subset is not accepted (no entity declarations)', this.pos);
      this.pos = end + 1;
      this.misc();
    }
  }

  private name(): string {
    NAME.lastIndex = this.pos;
    const m = NAME.exec(this.text);
    if (m === null) throw new XmlSyntaxError('expected a name', this.pos);
    this.pos = NAME.lastIndex;
    return m[0];
  }

  private element(depth: number): XmlElement {
    if (depth > this.limits.maxDepth) throw new XmlSyntaxError(`elements nested deeper than ${this.limits.maxDepth}`, this.pos);
    if (++this.elements > this.limits.maxElements) throw new XmlSyntaxError(`more than ${this.limits.maxElements} elements`, this.pos);
    this.pos += 1; // '<'
    const name = this.name();
    const attributes: Record<string, string> = {};
    for (;;) {
      this.skipSpace();
      if (this.text.startsWith('/>', this.pos)) {
        this.pos += 2;
        return { name, attributes, children: [], text: '' };
      }
      if (this.text.startsWith('>', this.pos)) {
        this.pos += 1;
        break;
      }
      ATTRIBUTE.lastIndex = this.pos;
      const m = ATTRIBUTE.exec(this.text);
      if (m === null) throw new XmlSyntaxError(`malformed attribute in <${name}>`, this.pos);
      const [, key = '', doubleQuoted, singleQuoted] = m;
      if (Object.hasOwn(attributes, key)) throw new XmlSyntaxError(`attribute ${key} repeated in <${name}>`, this.pos);
      attributes[key] = decodeEntities(doubleQuoted ?? singleQuoted ?? '', this.pos);
      this.pos = ATTRIBUTE.lastIndex;
    }
    const children: XmlElement[] = [];
    let text = '';
    for (;;) {
      const lt = this.text.indexOf('<', this.pos);
      if (lt < 0) throw new XmlSyntaxError(`<${name}> is not closed`, this.pos);
      text += decodeEntities(this.text.slice(this.pos, lt), this.pos);
      this.pos = lt;
      if (this.text.startsWith('</', lt)) {
        this.pos += 2;
        const closing = this.name();
        if (closing !== name) throw new XmlSyntaxError(`</${closing}> closes <${name}>`, lt);
        this.skipSpace();
        if (!this.text.startsWith('>', this.pos)) throw new XmlSyntaxError(`malformed </${name}>`, this.pos);
        this.pos += 1;
        return { name, attributes, children, text: text.trim() };
      }
      if (this.text.startsWith('<!--', lt)) this.skipPast('-->', 'comment');
      else if (this.text.startsWith('<?', lt)) this.skipPast('?>', 'processing instruction');
      else if (this.text.startsWith('<![CDATA[', lt)) {
        const end = this.text.indexOf(']]>', lt);
        if (end < 0) throw new XmlSyntaxError('unterminated CDATA section', lt);
        text += this.text.slice(lt + '<![CDATA['.length, end);
        this.pos = end + ']]>'.length;
      } else if (this.text.startsWith('<!', lt)) throw new XmlSyntaxError('markup declaration inside an element', lt);
      else children.push(this.element(depth + 1));
    }
  }
}

/** Parses `text` into its root element; never throws (a refusal names the problem and offset). */
export function parseXml(text: string, limits: Readonly<XmlLimits> = DEFAULT_XML_LIMITS): XmlParseResult {
  if (text.length > limits.maxChars)
    return { ok: false, error: `document longer than ${limits.maxChars} characters`, offset: limits.maxChars };
  try {
    return { ok: true, root: new Reader(text, limits).document() };
  } catch (err) {
    if (err instanceof XmlSyntaxError) return { ok: false, error: err.message, offset: err.offset };
    throw err;
  }
}

/** The first child named `name` (or the element at a `/`-separated path), if any. */
export function child(element: XmlElement | undefined, path: string): XmlElement | undefined {
  let current = element;
  for (const name of path.split('/')) current = current?.children.find((c) => c.name === name);
  return current;
}

/** Every child named `name`. */
export function childrenNamed(element: XmlElement | undefined, name: string): XmlElement[] {
  return element?.children.filter((c) => c.name === name) ?? [];
}

/** The text of the element at `path`, or undefined when it is absent. */
export function textAt(element: XmlElement | undefined, path: string): string | undefined {
  return child(element, path)?.text;
}
