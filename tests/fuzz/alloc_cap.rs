//! A global allocator that refuses any single allocation above [`CAP`]: every input the
//! harnesses parse is under a few MB, so a bigger request is a length or count taken from the
//! file without checking it against the file's size. The refusal makes the process abort with
//! Rust's "memory allocation of N bytes failed" (an allocator must not unwind), after printing
//! which harness was running; `LANTERN_FUZZ_SAVE` keeps the input for the regression test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

/// Largest single allocation a harness may make (the tiny models need well under 10 MB).
pub const CAP: usize = 256 << 20;

struct Capped;

thread_local! {
    /// Name of the harness running on this thread, for the abort message (const-initialised:
    /// reading it never allocates).
    static CURRENT: Cell<&'static str> = const { Cell::new("?") };
}

pub fn set_current(name: &'static str) {
    CURRENT.with(|c| c.set(name));
}

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > CAP {
            refuse(layout.size());
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > CAP {
            refuse(layout.size());
            return std::ptr::null_mut();
        }
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > CAP {
            refuse(new_size);
            return std::ptr::null_mut();
        }
        System.realloc(ptr, layout, new_size)
    }
}

/// Writes the message without allocating (we are inside the allocator).
fn refuse(size: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = size;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let name = CURRENT.try_with(Cell::get).unwrap_or("?");
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(b"fuzz harness `");
    let _ = err.write_all(name.as_bytes());
    let _ = err.write_all(b"`: refused an allocation of ");
    let _ = err.write_all(&digits[i..]);
    let _ = err.write_all(b" bytes (a length taken from the input without checking it)\n");
}

#[global_allocator]
static GLOBAL: Capped = Capped;
