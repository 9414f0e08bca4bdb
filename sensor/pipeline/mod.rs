//! Pipeline wiring. (Being written.)
