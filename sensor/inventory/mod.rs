//! Host inventory and verdicts. (Being written.)
