/**
 * Base58btc (the Bitcoin alphabet), the text form of libp2p peer ids, and the
 * unpadded lowercase base32 (RFC 4648) of the CID form of a peer id.  Both are
 * a few lines each; the conformance vectors check them against the Python
 * reference.
 */

export const BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE58_INDEX = new Map([...BASE58_ALPHABET].map((char, value) => [char, BigInt(value)]));

export function b58encode(data: Uint8Array): string {
  let zeros = 0;
  while (zeros < data.length && data[zeros] === 0) zeros++;
  let number = 0n;
  for (const byte of data) number = (number << 8n) | BigInt(byte);
  let digits = "";
  while (number > 0n) {
    digits = BASE58_ALPHABET[Number(number % 58n)] + digits;
    number /= 58n;
  }
  return "1".repeat(zeros) + digits;
}

/** Decode base58btc; `null` when a character is outside the alphabet. */
export function b58decode(text: string): Uint8Array | null {
  let zeros = 0;
  while (zeros < text.length && text[zeros] === "1") zeros++;
  let number = 0n;
  for (const char of text) {
    const digit = BASE58_INDEX.get(char);
    if (digit === undefined) return null;
    number = number * 58n + digit;
  }
  const body: number[] = [];
  while (number > 0n) {
    body.unshift(Number(number & 0xffn));
    number >>= 8n;
  }
  const out = new Uint8Array(zeros + body.length);
  out.set(body, zeros);
  return out;
}

const BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** Decode unpadded lowercase RFC 4648 base32; `null` if it is not that. */
export function b32decodeLower(text: string): Uint8Array | null {
  const out: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const char of text) {
    const value = BASE32_ALPHABET.indexOf(char);
    if (value < 0) return null;
    buffer = ((buffer << 5) | value) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((buffer >> bits) & 0xff);
    }
  }
  // Leftover bits must be fewer than 5 and zero (a canonical encoding).
  if (bits >= 5 || (buffer & ((1 << bits) - 1)) !== 0) return null;
  return Uint8Array.from(out);
}
