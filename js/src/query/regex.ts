/**
 * `$regex` on the platform's RegExp, limited to the portable subset of RE2
 * (docs/query.md, "Regular expressions").
 *
 * Theory of operation: the Python reference runs patterns on RE2.  Here a
 * pattern is parsed by a small scanner that accepts only the RE2 syntax whose
 * meaning it can reproduce exactly, and translates it into an ECMAScript
 * pattern run with the `u` flag (code points, as RE2 on UTF-8):
 *
 * - `.` becomes `[^\n]` (RE2's dot, which does match `\r`, U+2028 and
 *   U+2029), or `[\s\S]` with option `s`;
 * - `^` and `$` stay (start and end of text); with option `m` they become
 *   `(?:^|(?<=\n))` and `(?:$|(?=\n))`, since RE2 knows only `\n` as a line end;
 * - `\A` and `\z` become `^` and `$` (the `m` flag is never passed on);
 * - `\s` and `\S` become RE2's ASCII classes `[\t\n\f\r ]` and its complement;
 * - `\d \D \w \W \b \B` keep their ASCII meaning; other escapes of punctuation,
 *   `\n \t \r \f \v \a` and `\xHH` become the literal code point;
 * - repetitions `* + ? {n} {n,} {n,m}` (counts up to 1000, RE2's bound), lazy
 *   forms with a trailing `?`; groups `(...)`, `(?:...)`, `(?P<name>...)` and
 *   `(?<name>...)` (the name is dropped: only "does it occur" matters);
 * - classes `[...]` and `[^...]` of literals, ranges and `\d \w \s \D \W`.
 *
 * Anything else RE2 accepts (inline flags such as `(?i)`, `\pL`, `[[:alpha:]]`,
 * `\Q...\E`, `\C`, octal escapes, a `{` that is not a repetition) is rejected
 * with the reason; what RE2 rejects (backreferences, lookaround) is rejected too.
 * The scanner also refuses what RegExp then refuses (unbalanced groups, nothing
 * to repeat), by compiling the translation.
 *
 * Departure: RegExp backtracks, so a pattern like `(a+)+$` can take
 * exponential time on a hostile string, where RE2 is linear.
 */

const MAX_REPEAT = 1000;
const ASCII_SPACE = "\\t\\n\\f\\r ";
const SIMPLE_ESCAPES: Readonly<Record<string, number>> = { n: 10, t: 9, r: 13, f: 12, v: 11, a: 7 };

export class RegexNotPortable extends Error {}

function literal(codePoint: number): string {
  return `\\u{${codePoint.toString(16)}}`;
}

function isPunctuation(char: string): boolean {
  return /^[!-/:-@[-`{-~]$/.test(char);
}

class Scanner {
  private readonly chars: string[];
  private pos = 0;
  /** Per open group, the largest product of nested counted repetitions inside it (RE2 caps it at 1000). */
  private readonly products: number[] = [1];
  /** The repetition product of the last atom (1, or the product inside the group just closed). */
  private lastProduct = 1;

  constructor(pattern: string, private readonly dotAll: boolean, private readonly multiline: boolean) {
    this.chars = [...pattern];
  }

  private peek(offset = 0): string | undefined {
    return this.chars[this.pos + offset];
  }

  private fail(reason: string): never {
    throw new RegexNotPortable(reason);
  }

  translate(): string {
    let out = "";
    while (this.pos < this.chars.length) out += this.atom();
    return out;
  }

  private atom(): string {
    const char = this.chars[this.pos++] as string;
    if (char === "(") {
      this.products.push(1);
    } else if (char === ")") {
      if (this.products.length === 1) this.fail("unbalanced parenthesis");
      this.lastProduct = this.products.pop() as number;
    } else if (char !== "{" && !"*+?".includes(char)) {
      this.lastProduct = 1;
    }
    switch (char) {
      case ".": return this.dotAll ? "[\\s\\S]" : "[^\\n]";
      case "^": return this.multiline ? "(?:^|(?<=\\n))" : "^";
      case "$": return this.multiline ? "(?:$|(?=\\n))" : "$";
      case "|": case ")": case "*": case "+": case "?": return char + this.lazy(char);
      case "(": return this.group();
      case "[": return this.charClass();
      case "{": return this.repeat();
      case "\\": return this.escape(false);
      default: return literal(char.codePointAt(0) as number);
    }
  }

  /** A `?` after a repetition makes it lazy. */
  private lazy(char: string): string {
    if ("*+?".includes(char) && this.peek() === "?") {
      this.pos++;
      return "?";
    }
    return "";
  }

  private group(): string {
    if (this.peek() !== "?") return "(";
    const rest = this.chars.slice(this.pos, this.pos + 3).join("");
    if (rest.startsWith("?:")) {
      this.pos += 2;
      return "(?:";
    }
    if (rest.startsWith("?P<") || rest.startsWith("?<")) {
      const start = this.pos + (rest.startsWith("?P<") ? 3 : 2);
      const end = this.chars.indexOf(">", start);
      const name = end < 0 ? "" : this.chars.slice(start, end).join("");
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) this.fail("bad group name (or lookbehind, which RE2 lacks)");
      this.pos = end + 1;
      return "(";
    }
    return this.fail("inline flags and lookaround are outside the portable subset (use $options)");
  }

  private repeat(): string {
    const rest = this.chars.slice(this.pos - 1).join("");
    const match = /^\{(\d+)(,(\d*))?\}/.exec(rest);
    if (match === null) this.fail("a '{' that is not a repetition must be escaped");
    const low = Number(match[1]);
    const high = match[3] === undefined || match[3] === "" ? low : Number(match[3]);
    if (low > MAX_REPEAT || high > MAX_REPEAT) this.fail(`repetition count over ${MAX_REPEAT}`);
    if (match[2] !== undefined && match[3] !== "" && high < low) this.fail("bad repetition range");
    const product = (match[2] !== undefined && match[3] === "" ? low : high) * this.lastProduct;
    if (product > MAX_REPEAT) this.fail(`nested repetitions over ${MAX_REPEAT}`);
    const top = this.products.length - 1;
    this.products[top] = Math.max(this.products[top] as number, product);
    this.lastProduct = product;
    this.pos += [...match[0]].length - 1;
    const lazy = this.peek() === "?" ? (this.pos++, "?") : "";
    return match[0] + lazy;
  }

  private escape(inClass: boolean): string {
    const char = this.chars[this.pos++];
    if (char === undefined) return this.fail("trailing backslash");
    if ("dDwW".includes(char)) return `\\${char}`;
    if (char === "s") return inClass ? ASCII_SPACE : `[${ASCII_SPACE}]`;
    if (char === "S") return inClass ? this.fail("\\S inside a class is outside the portable subset") : `[^${ASCII_SPACE}]`;
    if (!inClass && (char === "b" || char === "B")) return `\\${char}`;
    if (!inClass && char === "A") return "^";
    if (!inClass && char === "z") return "$";
    const simple = SIMPLE_ESCAPES[char];
    if (simple !== undefined) return literal(simple);
    if (char === "x") {
      const hex = this.chars.slice(this.pos, this.pos + 2).join("");
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) this.fail("\\x takes two hex digits here");
      this.pos += 2;
      return literal(parseInt(hex, 16));
    }
    if (isPunctuation(char)) return literal(char.codePointAt(0) as number);
    return this.fail(`escape \\${char} is outside the portable subset`);
  }

  private charClass(): string {
    let out = "[";
    if (this.peek() === "^") {
      this.pos++;
      out += "^";
    }
    let first = true;
    for (;;) {
      const char = this.chars[this.pos];
      if (char === undefined) return this.fail("missing closing ]");
      if (char === "]" && !first) {
        this.pos++;
        return out + "]";
      }
      first = false;
      if (char === "[" && this.peek(1) === ":") this.fail("POSIX classes are outside the portable subset");
      const low = this.classAtom();
      if (this.peek() === "-" && this.peek(1) !== "]" && this.peek(1) !== undefined) {
        this.pos++;
        const high = this.classAtom();
        if (low.startsWith("\\u{") && high.startsWith("\\u{")) {
          if (parseInt(low.slice(3), 16) > parseInt(high.slice(3), 16)) this.fail("bad character class range");
          out += `${low}-${high}`;
          continue;
        }
        this.fail("a range between classes is not a range");
      }
      out += low;
    }
  }

  private classAtom(): string {
    const char = this.chars[this.pos++] as string;
    if (char === "\\") return this.escape(true);
    return literal(char.codePointAt(0) as number);
  }
}

/**
 * The ECMAScript source and flags that run `pattern` with RE2's meaning;
 * `RegexNotPortable` when the pattern is outside the portable subset.
 */
export function translateRegex(pattern: string, options: string): { source: string; flags: string } {
  const source = new Scanner(pattern, options.includes("s"), options.includes("m")).translate();
  const flags = options.includes("i") ? "iu" : "u";
  try {
    new RegExp(source, flags);
  } catch (error) {
    throw new RegexNotPortable(`bad regular expression: ${(error as Error).message}`);
  }
  return { source, flags };
}

const cache = new Map<string, (text: string) => boolean>();
/** Compiled patterns kept for reuse (identical patterns of many subscriptions share one). */
export const REGEX_CACHE = 4096;

/** `text -> boolean`: does the pattern occur in the text. */
export function regexSearcher(pattern: string, options: string): (text: string) => boolean {
  const key = `${options}/${pattern}`;
  let search = cache.get(key);
  if (search === undefined) {
    const { source, flags } = translateRegex(pattern, options);
    const regex = new RegExp(source, flags);
    search = (text) => regex.test(text);
    if (cache.size >= REGEX_CACHE) cache.delete(cache.keys().next().value as string);
    cache.set(key, search);
  }
  return search;
}
