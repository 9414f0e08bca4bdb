//! Live capture through libpcap. (Being written.)
