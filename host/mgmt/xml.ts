// A small XML reader and writer for libvirt's domain documents: elements, attributes, text, CDATA,
// comments and processing instructions, the five predefined entities and character references, and
// namespace prefixes resolved to their URIs. No DTDs: a document with a DOCTYPE is refused rather than
// expanded (entity definitions are how XML documents blow up), and libvirt never writes one. Node-free.

export class XmlSyntaxError extends Error {
  constructor(message: string, readonly line: number, readonly column: number) {
    super(`XML line ${line}, column ${column}: ${message}`);
    this.name = 'XmlSyntaxError';
  }
}

export interface XmlText {
  readonly kind: 'text';
  readonly text: string;
}

export interface XmlElement {
  readonly kind: 'element';
  /** The name as written, prefix included (`qemu:arg`). */
  readonly name: string;
  /** The name without its prefix. */
  readonly localName: string;
  /** The namespace URI its prefix (or the default namespace) is bound to; '' for none. */
  readonly namespace: string;
  /** Attributes in document order, by the name as written. */
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: ReadonlyArray<XmlElement | XmlText>;
}

/** Deeper than any domain document goes; bounds the recursion a hostile document could ask for. */
const MAX_DEPTH = 256;
const NAME = /[A-Za-z_:\u00c0-\uffff][-A-Za-z0-9_:.\u00b7\u00c0-\uffff]*/y;
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Parses a whole document and returns its root element. Throws XmlSyntaxError. */
export function parseXml(text: string): XmlElement {
  return new XmlReader(text).document();
}

class XmlReader {
  private pos = 0;

  constructor(private readonly text: string) {}

  document(): XmlElement {
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1;
    this.misc();
    if (!this.text.startsWith('<', this.pos) || this.text.startsWith('</', this.pos)) this.fail('expected the root element');
    const root = this.element(new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]), 0);
    this.misc();
    if (this.pos < this.text.length) this.fail('content after the root element');
    return root;
  }

  /** Whitespace, comments and processing instructions (the XML declaration among them) outside the root. */
  private misc(): void {
    for (;;) {
      this.skipSpace();
      if (this.text.startsWith('<?', this.pos)) this.skipPast('?>', 'processing instruction');
      else if (this.text.startsWith('<!--', this.pos)) this.skipPast('-->', 'comment');
      else if (this.text.startsWith('<!DOCTYPE', this.pos)) this.fail('DOCTYPE declarations are not accepted');
      else return;
    }
  }

  private element(scope: ReadonlyMap<string, string>, depth: number): XmlElement {
    if (depth >= MAX_DEPTH) this.fail(`elements nested deeper than ${MAX_DEPTH}`);
    this.expect('<');
    const name = this.name();
    const attributes = new Map<string, string>();
    for (;;) {
      const spaced = this.skipSpace();
      if (this.text.startsWith('/>', this.pos) || this.text.startsWith('>', this.pos)) break;
      if (!spaced) this.fail(`expected whitespace before an attribute of <${name}>`);
      const attribute = this.name();
      this.skipSpace();
      this.expect('=');
      this.skipSpace();
      if (attributes.has(attribute)) this.fail(`attribute '${attribute}' given twice`);
      attributes.set(attribute, this.attributeValue());
    }
    const inner = new Map(scope);
    for (const [attribute, value] of attributes) {
      if (attribute === 'xmlns') inner.set('', value);
      else if (attribute.startsWith('xmlns:')) inner.set(attribute.slice(6), value);
    }
    const colon = name.indexOf(':');
    const prefix = colon < 0 ? '' : name.slice(0, colon);
    const namespace = inner.get(prefix);
    if (namespace === undefined && prefix !== '') this.fail(`namespace prefix '${prefix}' is not declared`);
    const children: Array<XmlElement | XmlText> = [];
    const made: XmlElement = { kind: 'element', name, localName: name.slice(colon + 1), namespace: namespace ?? '', attributes, children };
    if (this.text.startsWith('/>', this.pos)) {
      this.pos += 2;
      return made;
    }
    this.pos++;
    let text = '';
    const flush = () => {
      if (text !== '') children.push({ kind: 'text', text });
      text = '';
    };
    for (;;) {
      if (this.pos >= this.text.length) this.fail(`<${name}> is not closed`);
      if (this.text.startsWith('</', this.pos)) {
        this.pos += 2;
        const closing = this.name();
        if (closing !== name) this.fail(`</${closing}> closes <${name}>`);
        this.skipSpace();
        this.expect('>');
        flush();
        return made;
      }
      if (this.text.startsWith('<!--', this.pos)) this.skipPast('-->', 'comment');
      else if (this.text.startsWith('<![CDATA[', this.pos)) {
        const end = this.text.indexOf(']]>', this.pos);
        if (end < 0) this.fail('CDATA section is not closed');
        text += this.text.slice(this.pos + 9, end);
        this.pos = end + 3;
      } else if (this.text.startsWith('<?', this.pos)) this.skipPast('?>', 'processing instruction');
      else if (this.text.startsWith('<!', this.pos)) this.fail('declarations are not accepted inside elements');
      else if (this.text.startsWith('<', this.pos)) {
        flush();
        children.push(this.element(inner, depth + 1));
      } else text += this.characters('<');
    }
  }

  private attributeValue(): string {
    const quote = this.text[this.pos];
    if (quote !== '"' && quote !== "'") this.fail('expected a quoted attribute value');
    this.pos++;
    // XML's attribute-value normalization: each literal whitespace character becomes a space (a
    // character reference such as &#10; stays what it says).
    const value = this.characters(quote, true);
    this.expect(quote);
    return value;
  }

  /** Character data up to `stop` (not consumed), with references replaced. */
  private characters(stop: string, normalizeSpace = false): string {
    let out = '';
    while (this.pos < this.text.length && this.text[this.pos] !== stop) {
      const ch = this.text[this.pos]!;
      if (ch === '<') this.fail("'<' in an attribute value");
      if (ch === '&') out += this.reference();
      else {
        out += normalizeSpace && (ch === '\t' || ch === '\n' || ch === '\r') ? ' ' : ch;
        this.pos++;
      }
    }
    if (this.pos >= this.text.length) this.fail('unexpected end of the document');
    return out;
  }

  private reference(): string {
    const end = this.text.indexOf(';', this.pos);
    if (end < 0 || end - this.pos > 12) this.fail("'&' starts no reference (write &amp;)");
    const body = this.text.slice(this.pos + 1, end);
    let value: string | undefined;
    const numeric = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(body);
    if (numeric !== null) {
      const code = numeric[1] !== undefined ? parseInt(numeric[1], 16) : Number(numeric[2]);
      const allowed = code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) ||
        (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
      if (!allowed) this.fail(`&${body}; is not a character XML allows`);
      value = String.fromCodePoint(code);
    } else value = PREDEFINED[body];
    if (value === undefined) this.fail(`unknown entity &${body}; (only the five predefined ones and character references)`);
    this.pos = end + 1;
    return value;
  }

  private name(): string {
    NAME.lastIndex = this.pos;
    const match = NAME.exec(this.text);
    if (match === null) this.fail('expected a name');
    this.pos += match[0].length;
    return match[0];
  }

  private skipSpace(): boolean {
    const start = this.pos;
    while (this.pos < this.text.length && ' \t\r\n'.includes(this.text[this.pos]!)) this.pos++;
    return this.pos > start;
  }

  private skipPast(end: string, what: string): void {
    const at = this.text.indexOf(end, this.pos + 2);
    if (at < 0) this.fail(`${what} is not closed`);
    this.pos = at + end.length;
  }

  private expect(text: string): void {
    if (!this.text.startsWith(text, this.pos)) this.fail(`expected '${text}'`);
    this.pos += text.length;
  }

  private fail(message: string): never {
    const before = this.text.slice(0, this.pos);
    const line = before.split('\n').length;
    throw new XmlSyntaxError(message, line, this.pos - before.lastIndexOf('\n'));
  }
}

/** Builds an element for writing: attributes whose value is undefined are left out. */
export function xmlElement(name: string, attributes: Record<string, string | number | undefined> = {},
  children: ReadonlyArray<XmlElement | XmlText | string | null | undefined> = []): XmlElement {
  const kept = new Map<string, string>();
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) kept.set(key, String(value));
  const colon = name.indexOf(':');
  return {
    kind: 'element', name, localName: name.slice(colon + 1), namespace: '', attributes: kept,
    children: children.filter((child) => child !== null && child !== undefined)
      .map((child) => (typeof child === 'string' ? { kind: 'text', text: child } : child)),
  };
}

/** Writes an element as libvirt does: two-space indentation, single-quoted attributes, text inline. */
export function formatXml(root: XmlElement): string {
  const lines: string[] = [];
  const write = (element: XmlElement, indent: string): void => {
    const attributes = [...element.attributes].map(([key, value]) => ` ${key}='${escapeXml(value, true)}'`).join('');
    const open = `${indent}<${element.name}${attributes}`;
    if (element.children.length === 0) {
      lines.push(`${open}/>`);
    } else if (element.children.every((child) => child.kind === 'text')) {
      lines.push(`${open}>${element.children.map((child) => escapeXml((child as XmlText).text, false)).join('')}</${element.name}>`);
    } else {
      lines.push(`${open}>`);
      for (const child of element.children) {
        if (child.kind === 'element') write(child, `${indent}  `);
        else if (child.text.trim() !== '') lines.push(`${indent}  ${escapeXml(child.text, false)}`);
      }
      lines.push(`${indent}</${element.name}>`);
    }
  };
  write(root, '');
  return `${lines.join('\n')}\n`;
}

function escapeXml(text: string, attribute: boolean): string {
  let out = text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  // In an attribute, quotes and the whitespace that normalization would turn into spaces stay as they were.
  if (attribute) out = out.replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
  else out = out.replace(/\r/g, '&#13;');
  return out;
}

/** The element children of `element` with this local name (in no namespace unless `namespace` is given). */
export function childElements(element: XmlElement, localName?: string, namespace = ''): XmlElement[] {
  return element.children.filter((child): child is XmlElement =>
    child.kind === 'element' && (localName === undefined || (child.localName === localName && child.namespace === namespace)));
}

/** The text content of an element (its text children joined; nested elements are not looked into). */
export function textOf(element: XmlElement): string {
  return element.children.map((child) => (child.kind === 'text' ? child.text : '')).join('');
}
