// A vCPU thread in a browser (a module Web Worker that SmpRunner starts): gets its VcpuWorkerData in the
// first message, runs vcpu_thread.ts's loop and says when it has stopped. Harts do not share translated
// code here: a Web Worker reads messages only from its event loop, which the hart's loop never returns to.
import { runVcpuThread, type VcpuWorkerData } from './vcpu_thread.js';

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<VcpuWorkerData>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (event) => {
  scope.onmessage = null;
  const data = { ...event.data, jitChannel: undefined };
  runVcpuThread(data, null);
  scope.postMessage({ type: 'stopped', hartId: data.hartId });
};
