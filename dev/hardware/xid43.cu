// Raises XID 43 ("GPU stopped processing": a fault of this application) on the one visible GPU
// by failing a device-side assert, the way DCGM's test suite provokes it (NVIDIA/DCGM#212).
// Only this process's CUDA context is torn down; the GPU, its other processes and the driver
// keep running, and no reset is needed. Built and run by `npm run validate:hardware --
// --inject-xid` (dev/hardware/validate.ts) with CUDA_VISIBLE_DEVICES set to the target GPU.
#include <cassert>
#include <cstdio>
#include <cuda_runtime.h>

__global__ void failAssert(int never) { assert(never == 1); }

int main() {
  failAssert<<<1, 1>>>(0);
  cudaError_t err = cudaDeviceSynchronize();
  std::printf("cudaDeviceSynchronize: %s\n", cudaGetErrorString(err));
  return err == cudaErrorAssert ? 0 : 1;
}
