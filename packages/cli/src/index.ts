/**
 * @improv/cli — the `improv` command, and the defaults it wires.
 * @module
 */
export { createDefaultNexus, type DefaultNexusOptions } from './defaults.ts';
export { exitCodes, main } from './main.ts';
export { type RuntimeName, type RunUnderOptions, runtimeNames, runUnder } from './runtime-switch.ts';
export { parseDuration, parseScript, type ScriptStep } from './script.ts';
