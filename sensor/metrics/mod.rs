//! Counters and Prometheus exposition. (Live capture and metrics come with the live issue.)
