/**
 * @improv/cli — the `improv` command, and the defaults it wires.
 * @module
 */
export { commandHelpText, completions, type ParsedCommandLine, parseCommandLine } from './command-line.ts';
export { LogHistory } from './control/log-history.ts';
export { dashboardAddress } from './control/page.ts';
export type * from './control/protocol.ts';
export { type ControlSession, type ControlSessionOptions, startControlSession } from './control/session.ts';
export { createDefaultNexus, type DefaultNexusOptions } from './defaults.ts';
export { exitCodes, main } from './main.ts';
export { type RuntimeName, type RunUnderOptions, runtimeNames, runUnder } from './runtime-switch.ts';
export { parseDuration, parseScript, type ScriptStep } from './script.ts';
