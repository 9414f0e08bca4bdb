//! TLS ClientHello SNI. (Being written.)
