// Loaded before the UI's server (`node --require ./signals.js dist/server.js ...`). Node is the container's
// first process, and the kernel gives a first process only the signals it handles: without these handlers
// SIGTERM is ignored and Kubernetes kills the pod only when its grace period ends. The server keeps no
// state to save, so it stops at once.
'use strict';
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
