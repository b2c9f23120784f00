//! The unit tests' origin instant: the one clock read they make; every later time is an
//! offset from it. Included into proto's unit tests by `#[path]`, so that `proto/src` itself
//! never reads a clock.

/// An arbitrary origin instant for tests.
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
