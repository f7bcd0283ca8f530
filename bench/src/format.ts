/**
 * How the bench writes numbers, in progress lines and tables alike.
 * @module
 */

/** `8 B`, `4 KiB`, `40 MiB`. */
export function label(size: number): string {
  if (size >= 1_048_576 && size % 1_048_576 === 0) return `${size / 1_048_576} MiB`;
  if (size >= 1024 && size % 1024 === 0) return `${size / 1024} KiB`;
  return `${size} B`;
}

/** Microseconds with about three significant digits. */
export function us(value: number): string {
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

/** A ratio: `1.23×`. */
export function x(ratio: number): string {
  return `${ratio < 10 ? ratio.toFixed(2) : ratio.toFixed(1)}×`;
}

/** A rate: `1.23 M`, `45.6 k`, `789`. */
export function perS(value: number): string {
  return value >= 1e6
    ? `${(value / 1e6).toFixed(2)} M`
    : value >= 1e3
      ? `${(value / 1e3).toFixed(1)} k`
      : value.toFixed(0);
}

/** Bytes in MiB, one decimal. */
export function mib(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1);
}

/** `+1.2`, `-0.4`. */
export function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(1)}`;
}
