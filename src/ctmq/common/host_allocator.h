// The host allocator policy of ctmq's processes: freed tensor memory stays
// with the process for reuse instead of going back to the kernel.
//
// glibc's malloc, by default, serves blocks above a threshold (128 KiB,
// raised dynamically up to 32 MiB) with mmap, returns them with munmap, and
// trims free memory above 128 KiB from the top of its heap. A training step
// allocates and frees the same activation and gradient tensors (MiB each)
// every step, so each step maps fresh pages and takes a page fault per 4 KiB
// on first touch: 10,900 faults per one-thread ResNet-20 step at batch 64,
// whose steps the policy below made 1.03-1.13x faster (docs/performance.md,
// "Channels-last activations"). PyTorch's tuning guide answers this with
// jemalloc or tcmalloc preloaded; here glibc's own knobs measured faster than
// jemalloc 5.3 (same section).
//
// keep_freed_host_memory() sets M_MMAP_THRESHOLD to 32 MiB (glibc's maximum:
// smaller blocks come from the heap) and M_TRIM_THRESHOLD to INT_MAX (the heap
// is not trimmed), through mallopt(3). The price: resident memory stays at the
// process's peak, as with any caching allocator. Blocks above 32 MiB are
// still mapped per allocation. Environment variables MALLOC_MMAP_THRESHOLD_
// and MALLOC_TRIM_THRESHOLD_, when set, win (a user's tuning is kept).
#pragma once

namespace ctmq {

// Call once at the start of main, before threads start. Returns true when the
// policy was applied; false when the C library's malloc is not glibc's (an
// AddressSanitizer build brings its own), an environment variable above is
// set, or mallopt refused a setting.
bool keep_freed_host_memory();

}  // namespace ctmq
