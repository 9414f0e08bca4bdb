//! TCP stream reassembly. (Being written.)
