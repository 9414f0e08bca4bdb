//! Counted reasons.
//!
//! Every packet, name or flow that a stage drops or skips is counted under a reason. Each stage
//! declares its reasons as a small `Copy` enum implementing [`Reason`]; counters keep one slot per
//! variant (no hashing on the hot path) and the label becomes a Prometheus label value and a
//! report key, so the set of labels is fixed at compile time.

/// A closed set of reasons with stable, snake_case labels.
pub trait Reason: Copy + 'static {
    /// Every variant, in the order of their slots.
    const ALL: &'static [Self];
    /// Slot of this variant in `ALL`.
    fn index(self) -> usize;
    /// Stable label (snake_case), used in metrics and reports.
    fn label(self) -> &'static str;
}

/// One counter slot per variant of `R`.
#[derive(Clone, Debug)]
pub struct ReasonCounts<R: Reason> {
    counts: Vec<u64>,
    _reason: std::marker::PhantomData<R>,
}

impl<R: Reason> Default for ReasonCounts<R> {
    fn default() -> Self {
        Self {
            counts: vec![0; R::ALL.len()],
            _reason: std::marker::PhantomData,
        }
    }
}

impl<R: Reason> ReasonCounts<R> {
    pub fn add(&mut self, reason: R, n: u64) {
        if let Some(slot) = self.counts.get_mut(reason.index()) {
            *slot = slot.saturating_add(n);
        }
    }

    pub fn incr(&mut self, reason: R) {
        self.add(reason, 1);
    }

    pub fn get(&self, reason: R) -> u64 {
        self.counts.get(reason.index()).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
    }

    /// `(label, count)` for every reason, zero counts included, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        R::ALL.iter().map(move |r| (r.label(), self.get(*r)))
    }
}

/// Declares a reason enum with its labels: `reason_enum! { pub enum X { A => "a", B => "b" } }`.
#[macro_export]
macro_rules! reason_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $crate::reason::Reason for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn index(self) -> usize { self as usize }
            fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }
    };
}
