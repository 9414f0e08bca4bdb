//! DNS messages (RFC 1035). (Being written.)
