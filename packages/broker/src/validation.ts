/** Whole-request checks: a malformed request fails as a whole with INVALID_REQUEST naming the field. */
import { FlotillaError } from "@flotilla/common";

export function requireItems(items: readonly unknown[] | undefined, field: string): void {
  if (!items || items.length === 0) throw new FlotillaError("INVALID_REQUEST", `${field} is empty`);
}

export function requireNonNegative(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0) throw new FlotillaError("INVALID_REQUEST", `${field} must be a non-negative integer, got ${value}`);
}

export function requireNames(names: readonly string[], field: string): void {
  names.forEach((n, i) => {
    if (typeof n !== "string" || n.length === 0) throw new FlotillaError("INVALID_REQUEST", `${field}[${i}] is empty`);
  });
}
