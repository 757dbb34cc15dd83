//! Which runtime [`RuntimeHandle::default`](super::RuntimeHandle::default),
//! [`RuntimeHandle::try_default`](super::RuntimeHandle::try_default) and
//! [`block_on`](super::block_on) use.
//!
//! With one runtime feature on, that one. With both on (a crate in the build enables `smol`
//! while another leaves lp2p-core's default `async-std` on, or tests that compile both),
//! the environment variable [`RUNTIME_ENV`] picks, read once per process: `smol` or
//! `async-std` (the default when unset). So one build runs its tests under either runtime:
//! `LP2P_RUNTIME=smol cargo test --workspace` runs every crate's tests on smol.

/// The environment variable that picks the default runtime when both the `async-std` and
/// the `smol` features are compiled in: `smol` or `async-std` (the default when unset; any
/// other value is logged and ignored).
pub const RUNTIME_ENV: &str = "LP2P_RUNTIME";

/// A runtime compiled into this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    #[cfg(feature = "async-std")]
    AsyncStd,
    #[cfg(feature = "smol")]
    Smol,
}

/// The runtime to use by default; `None` when no runtime feature is on.
// `None` happens only in a build without runtime features, hence the lint in the others.
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn chosen() -> Option<Choice> {
    #[cfg(all(feature = "async-std", feature = "smol"))]
    {
        static CHOICE: std::sync::OnceLock<Choice> = std::sync::OnceLock::new();
        Some(*CHOICE.get_or_init(|| from_env(std::env::var(RUNTIME_ENV).ok().as_deref())))
    }
    #[cfg(all(feature = "async-std", not(feature = "smol")))]
    {
        Some(Choice::AsyncStd)
    }
    #[cfg(all(feature = "smol", not(feature = "async-std")))]
    {
        Some(Choice::Smol)
    }
    #[cfg(not(any(feature = "async-std", feature = "smol")))]
    {
        None
    }
}

/// Reads the value of [`RUNTIME_ENV`] (both runtimes compiled in).
#[cfg(all(feature = "async-std", feature = "smol"))]
fn from_env(value: Option<&str>) -> Choice {
    match value {
        Some("smol") => Choice::Smol,
        None | Some("async-std" | "") => Choice::AsyncStd,
        Some(other) => {
            tracing::warn!(
                value = other,
                "{RUNTIME_ENV} is neither `smol` nor `async-std`; using async-std"
            );
            Choice::AsyncStd
        }
    }
}

#[cfg(all(feature = "async-std", feature = "smol"))]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuntimeHandle;

    #[test]
    fn the_environment_picks() {
        assert_eq!(from_env(Some("smol")), Choice::Smol);
        assert_eq!(from_env(Some("async-std")), Choice::AsyncStd);
        assert_eq!(from_env(None), Choice::AsyncStd);
        assert_eq!(from_env(Some("tokio")), Choice::AsyncStd);
    }

    /// CI runs the whole suite a second time with `LP2P_RUNTIME=smol`: this proves that run
    /// is really on smol (a typo in the variable would otherwise pass silently on async-std).
    #[test]
    fn the_default_runtime_is_the_one_asked_for() {
        let asked = std::env::var(RUNTIME_ENV).unwrap_or_else(|_| "async-std".to_owned());
        assert!(
            asked == "smol" || asked == "async-std",
            "{RUNTIME_ENV}={asked:?} names no runtime"
        );
        assert_eq!(RuntimeHandle::default().name(), asked);
        let on = crate::runtime::block_on(async { RuntimeHandle::default().name() });
        assert_eq!(on, asked);
    }
}
