// The watchdog of an actor process (started by node-process-child.mjs): a thread of its own that
// ends the process once its parent, Nexus, is gone. The process also ends when its control channel
// closes, but only its own thread sees that, and an actor stuck in a loop never lets it: this
// thread still runs then.
import process from 'node:process';
import { workerData } from 'node:worker_threads';

const parent = workerData.parent;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
}, 500);
