/**
 * Base64 (RFC 4648, with padding) of bytes, without Node's Buffer: the same text as
 * `Buffer.from(bytes).toString('base64')`, in Node and in browsers (btoa/atob are globals in both).
 */

/** Bytes as base64 text. */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK)
    binary += String.fromCharCode(...bytes.subarray(i, Math.min(bytes.length, i + CHUNK)));
  return btoa(binary);
}

/** Base64 text as bytes; throws a SyntaxError (from atob) on text that is not base64. */
export function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
