// The few members of Deno's global that main.ts uses, so `tsc` can check it without Deno's own
// type library (Deno itself ignores this file).
declare const Deno: {
  readonly args: string[];
  readonly version: { readonly deno: string };
  exitCode: number;
  exit(code?: number): never;
};
