//! Allocator tuning for activation caches.
//!
//! A forward pass that caches every hook point allocates hundreds of megabytes of fresh tensors
//! per run. glibc serves each block above 128 KiB with its own `mmap` and unmaps it on free, so
//! the next run page-faults all of that memory in again; on SmolLM2 (batch 16) that alone made
//! caching everything cost about 1.5x the plain forward pass instead of about 1.1x. Raising the
//! mmap and trim thresholds lets freed blocks be reused from the heap.

/// Keep freed blocks of up to 512 MiB in the heap for reuse (glibc on Linux; a no-op elsewhere).
///
/// Process-wide, so the library never does it on its own: the `lantern` binary and the benches
/// call it first thing, and a program of yours can too. The cost is a resident set that stays at
/// its peak rather than shrinking after each run.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
