//! Counters and Prometheus exposition. (Being written.)
