/**
 * @improv/cli — the `improv` command, and the defaults it wires.
 * @module
 */
export { createDefaultNexus, type DefaultNexusOptions } from './defaults.ts';
export { exitCodes, main } from './main.ts';
export { parseDuration, parseScript, type ScriptStep } from './script.ts';
export { type RunUnderOptions, type RuntimeName, runtimeNames, runUnder } from './runtime-switch.ts';
