//! Counter sets declared once (the firecracker `metrics.rs` model).
//!
//! A component's counters are written down in one place with
//! [`counter_set!`]: the macro makes the shared struct of atomics that the
//! owning thread bumps, a plain snapshot struct that adds up (per-thread sums)
//! and serialises (`/stats`), and a [`CounterSet`] impl that walks every field
//! with its name and help text (`/metrics`, text reports). Adding a counter is
//! one line; no list of fields is written out a second time anywhere.
//!
//! Thread-safety: the atomic struct may be shared freely (`Arc`); every
//! operation is a relaxed load or add, so readers see each counter's latest
//! value but no cross-counter consistency (as with OVS's per-thread stats).

/// A set of monotonic counters that can be walked for export.
pub trait CounterSet {
    /// `(name, help)` of every counter, in declaration order.
    const FIELDS: &'static [(&'static str, &'static str)];
    /// Calls `f(name, help, value)` for every counter, in declaration order.
    fn for_each(&self, f: &mut dyn FnMut(&'static str, &'static str, u64));
}

/// Declares a counter set: `counter_set! { pub struct Stats / StatsSnapshot {
/// /// help. \n field, ... } }` makes `Stats` (atomics, `Default`), the plain
/// `StatsSnapshot` (`Copy`, `Serialize`, `Add`), `Stats::snapshot`,
/// `Stats::add_from` (publishes a thread-local snapshot into the shared
/// atomics) and `impl CounterSet for StatsSnapshot`.
#[macro_export]
macro_rules! counter_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident / $snap:ident {
            $( $(#[doc = $doc:literal])+ $field:ident ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Default, Debug)]
        $vis struct $name {
            $( $(#[doc = $doc])+ pub $field: ::std::sync::atomic::AtomicU64, )*
        }

        #[doc = concat!("A plain copy of [`", stringify!($name), "`] (or a sum of several).")]
        #[derive(Default, Debug, Clone, Copy, PartialEq, Eq, ::serde::Serialize)]
        $vis struct $snap {
            $( $(#[doc = $doc])+ pub $field: u64, )*
        }

        impl $name {
            /// Reads every counter (relaxed).
            pub fn snapshot(&self) -> $snap {
                $snap {
                    $( $field: self.$field.load(::std::sync::atomic::Ordering::Relaxed), )*
                }
            }

            /// Adds a locally accumulated delta to the shared counters.
            pub fn add_from(&self, d: &$snap) {
                $(
                    if d.$field != 0 {
                        self.$field.fetch_add(d.$field, ::std::sync::atomic::Ordering::Relaxed);
                    }
                )*
            }
        }

        impl ::std::ops::Add for $snap {
            type Output = $snap;
            fn add(self, o: $snap) -> $snap {
                $snap { $( $field: self.$field.wrapping_add(o.$field), )* }
            }
        }

        impl ::std::ops::AddAssign for $snap {
            fn add_assign(&mut self, o: $snap) {
                *self = *self + o;
            }
        }

        impl $crate::util::counters::CounterSet for $snap {
            const FIELDS: &'static [(&'static str, &'static str)] = &[
                $( (stringify!($field), concat!($($doc),+)), )*
            ];
            fn for_each(&self, f: &mut dyn FnMut(&'static str, &'static str, u64)) {
                $( f(stringify!($field), concat!($($doc),+).trim(), self.$field); )*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::CounterSet;

    crate::counter_set! {
        /// Test counters.
        pub struct Demo / DemoSnapshot {
            /// Apples seen.
            apples,
            /// Pears seen.
            pears,
        }
    }

    #[test]
    fn snapshot_add_and_walk() {
        let d = Demo::default();
        d.add_from(&DemoSnapshot {
            apples: 2,
            pears: 0,
        });
        d.add_from(&DemoSnapshot {
            apples: 1,
            pears: 5,
        });
        let s = d.snapshot();
        assert_eq!((s.apples, s.pears), (3, 5));
        let sum = s + s;
        assert_eq!(sum.pears, 10);
        let mut seen = Vec::new();
        sum.for_each(&mut |n, h, v| seen.push((n, h.to_string(), v)));
        assert_eq!(
            seen,
            vec![
                ("apples", "Apples seen.".to_string(), 6),
                ("pears", "Pears seen.".to_string(), 10)
            ]
        );
        assert_eq!(DemoSnapshot::FIELDS.len(), 2);
        let j = serde_json::to_value(s).unwrap();
        assert_eq!(j["apples"], 3);
    }
}
