// A vCPU thread in Node (a worker_threads Worker that SmpRunner starts): runs vcpu_thread.ts's loop.
// Translated code is shared: each module of translated blocks a thread compiles goes to the VM's other
// vCPU threads on a BroadcastChannel, and each takes it into its hart's block cache between run() calls,
// reading the channel synchronously (Node's receiveMessageOnPort): the loop never returns to the event loop.
import { BroadcastChannel, parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { TranslatedBatch } from '../kvm/core.js';
import { runVcpuThread, type TranslationSharing, type VcpuWorkerData } from './vcpu_thread.js';

function main(data: VcpuWorkerData): void {
  const channel = data.jitChannel === undefined ? null : new BroadcastChannel(data.jitChannel);
  channel?.unref();
  // Node reads a BroadcastChannel like a MessagePort with receiveMessageOnPort (its type declarations predate that).
  const port = channel as unknown as MessagePort | null;
  const sharing: TranslationSharing | null = channel === null ? null : {
    publish: (batch) => channel.postMessage(batch),
    *received() {
      for (let message = receiveMessageOnPort(port!); message !== undefined; message = receiveMessageOnPort(port!)) {
        yield message.message as TranslatedBatch;
      }
    },
  };
  runVcpuThread(data, sharing);
  channel?.close();
  parentPort?.postMessage({ type: 'stopped', hartId: data.hartId });
}

main(workerData as VcpuWorkerData);
