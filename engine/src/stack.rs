//! Running deep-recursing work (YAML scanning, CEL) on a thread with a large stack.
//!
//! The YAML scanner recurses on block nesting before the depth budget stops it, and
//! the `cel` interpreter aborts the whole process on stack overflow (there is no
//! unwinding from it). Both are bounded by input limits, and the limits are sized so
//! that this stack is never exhausted.

/// Stack size for policy work: generous, since it is only reserved address space.
pub const LARGE_STACK: usize = 256 << 20;

/// Runs `f` on a new thread with [`LARGE_STACK`] bytes of stack and returns its result.
///
/// Fails only when the thread cannot be created or `f` panics.
pub fn with_large_stack<T, F>(f: F) -> std::io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let handle = std::thread::Builder::new().name("budgit-policy".into()).stack_size(LARGE_STACK).spawn(f)?;
    handle.join().map_err(|_| std::io::Error::other("policy worker thread panicked"))
}
