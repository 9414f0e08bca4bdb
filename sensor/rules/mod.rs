//! Rules: which names are Kaspersky infrastructure. (Being written.)
