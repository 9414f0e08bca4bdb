//! Events, reports and summaries. (Being written.)
