//! QUIC Initial packets. (Being written.)
