// node_cluster.js — the Node.js `cluster` supervisor that forkshare's verifier bundles.
//
// Usage: node node_cluster.js --port P --workers N [--sched rr|none]
//
// A primary with the usual signal handling of a hand-written cluster supervisor (DOMAIN §4):
//
// Scheduling policy: `--sched rr|none` sets `cluster.schedulingPolicy` before the first fork;
//   without it Node reads NODE_CLUSTER_SCHED_POLICY (rr|none), default rr on Linux. In rr the
//   primary alone holds the listening socket, accepts, and passes each connection to a worker
//   over IPC (SCM_RIGHTS); in none the primary binds and sends the *listening* socket to each
//   worker, which accept themselves (a thundering herd: libuv uses no EPOLLEXCLUSIVE, J1).
//
// Workers: an http server on 127.0.0.1:P answering every request `200` with `Connection:
//   close` and the body "served by pid N". Node's own worker code exits when the IPC channel
//   to the primary closes (the primary died), unless the worker was disconnected on purpose.
//
// Signals (to the primary):
//   SIGHUP  reload — Node's usual rolling restart: fork N new workers; once each new one is
//           listening, disconnect() one old worker (which stops accepting, finishes its open
//           connections and exits). The listening socket stays in the primary (rr) or is
//           shared with the new workers (none): it is never closed, so nothing is lost.
//   SIGTERM graceful stop — disconnect() every worker; the primary exits once they have all
//           exited. In rr the primary's listener closes as soon as the last worker has
//           disconnected (Node's RoundRobinHandle), in none every process closes its copy at
//           once: the port refuses from the start of the stop (F1 and F2 early).
//   A disconnected worker (reload or graceful stop) that has not exited GRACEFUL_TIMEOUT_MS
//   later is SIGKILLed — the pattern of Node's own worker.disconnect() example. Without it a
//   client that connected and never sent a request keeps its worker alive for minutes (Node's
//   server.close() waits for it: measured here, more than 160 s with Node 20's defaults).
//   SIGINT  fast stop — SIGTERM to every worker (and SIGCONT, so that a stopped worker acts on
//           it), SIGKILL after 1 s to whoever is left; the primary exits once they are gone.
//   A worker that dies is replaced at once (`cluster.on('exit')`), unless the primary is
//   stopping or the worker was disconnected on purpose (reload or graceful stop).
//
// Exit codes: 0 after a stop, 2 on a usage error.
'use strict';

const cluster = require('node:cluster');
const http = require('node:http');

const FAST_STOP_GRACE_MS = 1000;
const GRACEFUL_TIMEOUT_MS = 5000;

function parseArguments(argv) {
  const options = { port: 0, workers: 2, sched: '' };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (name === '--port') options.port = Number(value);
    else if (name === '--workers') options.workers = Number(value);
    else if (name === '--sched') options.sched = value;
    else usage(`unknown argument ${name}`);
  }
  if (!Number.isInteger(options.port) || options.port <= 0) usage('--port P is required');
  if (!Number.isInteger(options.workers) || options.workers < 1) usage('--workers N must be >= 1');
  if (!['', 'rr', 'none'].includes(options.sched)) usage('--sched must be rr or none');
  return options;
}

function usage(message) {
  process.stderr.write(`node_cluster.js: ${message}\n` +
    'usage: node node_cluster.js --port P --workers N [--sched rr|none]\n');
  process.exit(2);
}

function runWorker(port) {
  const server = http.createServer((request, response) => {
    response.setHeader('Connection', 'close');
    response.end(`served by pid ${process.pid}\n`);
  });
  server.listen(port, '127.0.0.1');
}

function runPrimary(options) {
  if (options.sched === 'rr') cluster.schedulingPolicy = cluster.SCHED_RR;
  if (options.sched === 'none') cluster.schedulingPolicy = cluster.SCHED_NONE;
  let stopping = '';
  // Every worker process until its 'exit' (cluster.workers forgets a worker as soon as its IPC
  // channel is disconnected, while the process may still be finishing its connections).
  const running = new Set();

  const fork = () => {
    const worker = cluster.fork({ NODE_CLUSTER_WORKER_PORT: String(options.port) });
    running.add(worker);
    return worker;
  };
  const live = () => [...running];
  const retire = (worker) => {
    if (!worker.isConnected()) return;
    worker.disconnect();
    setTimeout(() => {
      if (running.has(worker)) worker.process.kill('SIGKILL');
    }, GRACEFUL_TIMEOUT_MS).unref();
  };
  const exitWhenEmpty = () => {
    if (stopping && running.size === 0) process.exit(0);
  };

  cluster.on('exit', (worker) => {
    running.delete(worker);
    if (!stopping && !worker.exitedAfterDisconnect) fork();
    exitWhenEmpty();
  });

  process.on('SIGHUP', () => {
    if (stopping) return;
    const old = live().filter((worker) => worker.isConnected());
    for (let i = 0; i < options.workers; i += 1) {
      const retiring = old[i];
      fork().once('listening', () => {
        if (retiring) retire(retiring);
      });
    }
    for (const extra of old.slice(options.workers)) retire(extra);
  });

  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = 'graceful';
    for (const worker of live()) retire(worker);
    exitWhenEmpty();
  });

  process.on('SIGINT', () => {
    stopping = 'fast';
    for (const worker of live()) {
      worker.process.kill('SIGTERM');
      worker.process.kill('SIGCONT');
    }
    setTimeout(() => {
      for (const worker of live()) worker.process.kill('SIGKILL');
    }, FAST_STOP_GRACE_MS).unref();
    exitWhenEmpty();
  });

  for (let i = 0; i < options.workers; i += 1) fork();
}

if (cluster.isPrimary) {
  runPrimary(parseArguments(process.argv.slice(2)));
} else {
  runWorker(Number(process.env.NODE_CLUSTER_WORKER_PORT));
}
